package bitrixtest

// appOptionGet answers app.option.get: one option, or all of them.
func appOptionGet(c *call) (outcome, *restError) {
	p := c.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if name := str(c.param("option")); name != "" {
		v, _ := p.options.get(name)
		return outcome{result: v}, nil
	}
	all := newObj()
	if p.options != nil {
		for _, k := range p.options.keys {
			all.set(k, p.options.m[k])
		}
	}
	return outcome{result: all}, nil
}

// appOptionSet answers app.option.set; administrators only.
func appOptionSet(c *call) (outcome, *restError) {
	if !c.isAdmin() {
		return outcome{}, newError(400, "AccessException", "Administrator authorization required")
	}
	opts, ok := c.param("options").(*obj)
	if !ok || opts.len() == 0 {
		return outcome{}, newError(400, "ArgumentNullException",
			"Argument 'options' is null or empty")
	}
	p := c.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.options == nil {
		p.options = newObj()
	}
	for _, k := range opts.keys {
		p.options.set(k, opts.m[k])
	}
	return outcome{result: true}, nil
}

// Option returns an app option as stored by app.option.set.
func (p *Portal) Option(name string) (any, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	v, ok := p.options.get(name)
	if o, isObj := v.(*obj); isObj {
		return plain(o), ok
	}
	return v, ok
}
