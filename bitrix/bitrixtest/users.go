package bitrixtest

import (
	"strconv"
	"strings"
	"time"
)

// appInfo is the portal's app.info (not the OAuth server's shape).
func appInfo(c *call) (outcome, *restError) {
	app := c.p.appSnapshot()
	license, family := "en_project", "project"
	c.p.bucket.mu.Lock()
	enterprise := c.p.bucket.rate >= 5
	c.p.bucket.mu.Unlock()
	if enterprise {
		license, family = "en_ent250", "ent"
	}
	return outcome{result: newObj().set("ID", 1).set("CODE", c.s.opts.ClientID).
		set("VERSION", app.version).set("STATUS", "L").set("INSTALLED", app.installed).
		set("PAYMENT_EXPIRED", "N").set("DAYS", nil).set("LANGUAGE_ID", c.p.lang).
		set("LICENSE", license).set("LICENSE_TYPE", family).set("LICENSE_FAMILY", family)}, nil
}

func profile(c *call) (outcome, *restError) {
	p := c.p
	p.mu.Lock()
	defer p.mu.Unlock()
	u := p.user(c.g.userID)
	if u == nil || u.Dismissed {
		return outcome{result: newObj()}, nil
	}
	return outcome{result: newObj().set("ID", strconv.Itoa(u.ID)).set("ADMIN", u.Admin).
		set("NAME", u.Name).set("LAST_NAME", u.LastName).set("PERSONAL_GENDER", "").
		set("TIME_ZONE", u.TimeZone)}, nil
}

func userAdmin(c *call) (outcome, *restError) { return outcome{result: c.isAdmin()}, nil }

// userRow is a user as user.get answers it. Callers hold p.mu.
func userRow(u *User) *obj {
	return newObj().set("ID", strconv.Itoa(u.ID)).set("ACTIVE", !u.Dismissed).
		set("NAME", u.Name).set("LAST_NAME", u.LastName).set("SECOND_NAME", "").
		set("EMAIL", u.Email).set("IS_ONLINE", "N").set("TIME_ZONE", u.TimeZone).
		set("PERSONAL_GENDER", "").set("WORK_POSITION", "").
		set("UF_DEPARTMENT", []int{u.Department}).set("USER_TYPE", "employee")
}

func userCurrent(c *call) (outcome, *restError) {
	p := c.p
	p.mu.Lock()
	defer p.mu.Unlock()
	u := p.user(c.g.userID)
	if u == nil {
		return outcome{}, newError(401, "authorization_error", "Unable to authorize user")
	}
	return outcome{result: userRow(u)}, nil
}

// userGet answers user.get: filter keys under FILTER/filter or at the top level.
func userGet(c *call) (outcome, *restError) {
	filter := c.object("filter")
	for _, k := range c.in.keys {
		switch strings.ToUpper(k) {
		case "ID", "ACTIVE", "UF_DEPARTMENT", "NAME", "LAST_NAME", "EMAIL", "USER_TYPE":
			filter.set(k, c.in.m[k])
		}
	}
	start, _ := intOf(c.param("start"))
	p := c.p
	p.mu.Lock()
	defer p.mu.Unlock()
	var rows []any
	for i := range p.users {
		u := &p.users[i]
		if userMatches(u, filter) {
			rows = append(rows, userRow(u))
		}
	}
	if strings.EqualFold(str(c.param("order")), "DESC") {
		for i, j := 0, len(rows)-1; i < j; i, j = i+1, j-1 {
			rows[i], rows[j] = rows[j], rows[i]
		}
	}
	from, to, total, next := page(len(rows), start)
	return outcome{result: append([]any{}, rows[from:to]...), total: total, next: next}, nil
}

func userMatches(u *User, filter *obj) bool {
	for _, key := range filter.keys {
		v := filter.m[key]
		switch strings.ToUpper(key) {
		case "ACTIVE":
			if truthy(v) == u.Dismissed {
				return false
			}
		case "ID":
			if !anyEqual([]string{strconv.Itoa(u.ID)}, strList(v)) {
				return false
			}
		case "UF_DEPARTMENT":
			if !anyEqual([]string{strconv.Itoa(u.Department)}, strList(v)) {
				return false
			}
		case "NAME":
			if !strings.EqualFold(u.Name, str(v)) {
				return false
			}
		case "LAST_NAME":
			if !strings.EqualFold(u.LastName, str(v)) {
				return false
			}
		case "EMAIL":
			if !strings.EqualFold(u.Email, str(v)) {
				return false
			}
		case "USER_TYPE":
			if !strings.EqualFold(str(v), "employee") {
				return false
			}
		}
	}
	return true
}

func strList(v any) []string {
	var out []string
	for _, x := range list(v) {
		out = append(out, str(x))
	}
	return out
}

func departmentGet(c *call) (outcome, *restError) {
	filter := newObj()
	for _, k := range c.in.keys {
		switch strings.ToUpper(k) {
		case "ID", "NAME", "PARENT", "UF_HEAD", "SORT":
			filter.set(strings.ToUpper(k), c.in.m[k])
		}
	}
	conds := parseFilter(filter)
	start, _ := intOf(c.param("START"))
	p := c.p
	p.mu.Lock()
	defer p.mu.Unlock()
	var rows []any
	for _, d := range p.departments {
		e := &entity{fields: map[string]string{"ID": strconv.Itoa(d.ID), "NAME": d.Name,
			"SORT": "500"}}
		if d.Parent != 0 {
			e.fields["PARENT"] = strconv.Itoa(d.Parent)
		}
		if d.Head != 0 {
			e.fields["UF_HEAD"] = strconv.Itoa(d.Head)
		}
		if !matches(e, conds) {
			continue
		}
		row := newObj().set("ID", e.fields["ID"]).set("NAME", d.Name).set("SORT", 500)
		if d.Parent != 0 {
			row.set("PARENT", e.fields["PARENT"])
		}
		if d.Head != 0 {
			row.set("UF_HEAD", e.fields["UF_HEAD"])
		}
		rows = append(rows, row)
	}
	from, to, total, next := page(len(rows), start)
	return outcome{result: append([]any{}, rows[from:to]...), total: total, next: next}, nil
}

// imUserListGet answers im.user.list.get: an object keyed by ID, or a list with
// RESULT_TYPE=array; "absent" is the end of the absence or false.
func imUserListGet(c *call) (outcome, *restError) {
	asArray := strings.EqualFold(str(c.param("RESULT_TYPE")), "array")
	p := c.p
	p.mu.Lock()
	defer p.mu.Unlock()
	out := newObj()
	var rows []any
	now := time.Now()
	for _, idv := range list(c.param("ID")) {
		id, ok := intOf(idv)
		if !ok {
			continue
		}
		u := p.user(id)
		if u == nil {
			continue
		}
		var absent any = false
		if u.AbsentUntil.After(now) {
			absent = u.AbsentUntil.In(p.loc).Format(dateLayout)
		}
		row := newObj().set("id", u.ID).set("active", !u.Dismissed).
			set("name", strings.TrimSpace(u.Name+" "+u.LastName)).set("first_name", u.Name).
			set("last_name", u.LastName).set("status", "offline").set("idle", false).
			set("last_activity_date", false).set("mobile_last_date", false).
			set("desktop_last_date", false).set("absent", absent).
			set("departments", []int{u.Department}).set("bot", false).set("extranet", false).
			set("time_zone", u.TimeZone)
		if asArray {
			rows = append(rows, row)
		} else {
			out.set(strconv.Itoa(u.ID), row)
		}
	}
	if asArray {
		if rows == nil {
			rows = []any{}
		}
		return outcome{result: rows}, nil
	}
	return outcome{result: out}, nil
}

// timemanStatus answers timeman.status for USER_ID or the token's owner.
func timemanStatus(c *call) (outcome, *restError) {
	uid := c.g.userID
	if v := c.param("USER_ID"); v != nil {
		id, ok := intOf(v)
		if !ok {
			return outcome{}, newError(400, "", "User not found")
		}
		uid = id
	}
	p := c.p
	p.mu.Lock()
	defer p.mu.Unlock()
	u := p.user(uid)
	if u == nil {
		return outcome{}, newError(400, "", "User not found")
	}
	status := u.Timeman
	if status == "" {
		status = "CLOSED"
	}
	today := time.Now().In(p.loc).Truncate(time.Hour)
	var start, finish any
	if u.Timeman != "" {
		start = today.Format(dateLayout)
	}
	if status == "CLOSED" && u.Timeman != "" {
		finish = time.Now().In(p.loc).Format(dateLayout)
	}
	_, offset := time.Now().In(p.loc).Zone()
	return outcome{result: newObj().set("STATUS", status).set("TIME_START", start).
		set("TIME_FINISH", finish).set("DURATION", "00:00:00").set("TIME_LEAKS", "00:00:00").
		set("ACTIVE", status == "OPENED").set("IP_OPEN", "").set("IP_CLOSE", "").
		set("TZ_OFFSET", offset)}, nil
}
