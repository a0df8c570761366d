// The settings page of LeadRouter inside Bitrix24.
//
// The server renders the frame of the page and hands this script its configuration
// in <body data-config>: the session token for the settings API, the language and
// its texts. Everything the page shows is built with DOM calls and textContent,
// never by assembling HTML, so whatever a person typed is shown as text.
(function () {
  "use strict";

  var cfg = JSON.parse(document.body.getAttribute("data-config") || "{}");
  var texts = cfg.i18n || {};
  var b24 = null; // the frame SDK, once it has talked to the portal

  function t(key) {
    return Object.prototype.hasOwnProperty.call(texts, key) ? texts[key] : key;
  }

  // tf fills {name} placeholders of a text.
  function tf(key, values) {
    return t(key).replace(/\{(\w+)\}/g, function (_, name) {
      return values[name] === undefined ? "" : String(values[name]);
    });
  }

  // ---- DOM ----

  // h builds an element. props: class, text, on* handlers, dataset via data-*,
  // everything else as attributes. Children may be nodes, strings or arrays.
  function h(tag, props) {
    var el = document.createElement(tag);
    Object.keys(props || {}).forEach(function (k) {
      var v = props[k];
      if (v === undefined || v === null || v === false) {
        return;
      }
      if (k === "class") {
        el.className = v;
      } else if (k === "text") {
        el.textContent = String(v);
      } else if (k.slice(0, 2) === "on") {
        el.addEventListener(k.slice(2), v);
      } else if (k === "value") {
        el.value = v;
      } else if (k === "checked" || k === "disabled" || k === "selected") {
        el[k] = !!v;
      } else {
        el.setAttribute(k, v === true ? "" : String(v));
      }
    });
    for (var i = 2; i < arguments.length; i++) {
      append(el, arguments[i]);
    }
    return el;
  }

  function append(el, child) {
    if (child === null || child === undefined || child === false) {
      return;
    }
    if (Array.isArray(child)) {
      child.forEach(function (c) { append(el, c); });
    } else if (typeof child === "string" || typeof child === "number") {
      el.appendChild(document.createTextNode(String(child)));
    } else {
      el.appendChild(child);
    }
  }

  function clear(el) {
    while (el.firstChild) {
      el.removeChild(el.firstChild);
    }
    return el;
  }

  function $(id) {
    return document.getElementById(id);
  }

  // fit asks the portal to size the frame to the page, once per burst of changes.
  // It sends the height of the body rather than of the document (fitWindow's
  // choice), so that the frame also shrinks when a shorter tab opens; the width
  // stays "100%" so the frame follows the portal's layout.
  var fitTimer = null;
  function fit() {
    if (!b24) {
      return;
    }
    clearTimeout(fitTimer);
    fitTimer = setTimeout(function () {
      var height = Math.ceil(document.body.getBoundingClientRect().height);
      b24.parent.message.send("resizeWindow", { width: "100%", height: height, isSafely: true })
        .catch(function () {});
    }, 30);
  }

  // ---- API ----

  // api calls the settings API. When the page session has run out, it renews the
  // session once with fresh auth from the portal and repeats the call; only when
  // that fails does the caller see the 401 (and the page offer a reload).
  function api(method, path, body) {
    return send(method, path, body).catch(function (err) {
      if (err.status !== 401 || err.data.error !== "bad_session") {
        throw err;
      }
      return renewSession().then(function () {
        return send(method, path, body);
      }, function () {
        throw err;
      });
    });
  }

  // renewing is the renewal in flight, shared by the calls that failed together.
  var renewing = null;

  // renewSession asks the portal, through the frame SDK, for fresh auth and trades
  // it, with the old session, for a new session token.
  function renewSession() {
    if (!b24 || !b24.auth || !b24.auth.refreshAuth) {
      return Promise.reject(new Error("no frame"));
    }
    if (!renewing) {
      renewing = b24.auth.refreshAuth().then(function (auth) {
        if (!auth || !auth.access_token) {
          throw new Error("no fresh auth");
        }
        return send("POST", "/session", { auth_id: auth.access_token, member_id: auth.member_id });
      }).then(function (data) {
        cfg.token = data.token;
        // Counted on the page for the browser test.
        var renewed = Number(document.body.getAttribute("data-session-renewed") || 0);
        document.body.setAttribute("data-session-renewed", String(renewed + 1));
      });
      renewing.then(clearRenewal, clearRenewal);
    }
    return renewing;
  }

  function clearRenewal() {
    renewing = null;
  }

  // send makes one settings API request with the current session token.
  function send(method, path, body) {
    var opts = {
      method: method,
      headers: { "Authorization": "Bearer " + cfg.token, "Accept": "application/json" }
    };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    return fetch(cfg.api + path, opts).then(function (resp) {
      return resp.text().then(function (raw) {
        var data = null;
        try {
          data = raw ? JSON.parse(raw) : null;
        } catch (e) {
          data = null;
        }
        if (!resp.ok) {
          var err = new Error((data && data.message) || t("error.generic"));
          err.status = resp.status;
          err.data = data || {};
          throw err;
        }
        return data;
      });
    });
  }

  function alertBox(kind, title, detail) {
    var box = h("div", { class: "lr-notice lr-notice-" + kind, role: "status" },
      h("div", null, h("strong", { text: title }), detail ? h("span", { text: detail }) : null));
    return box;
  }

  function flash(kind, title, detail) {
    var area = clear($("lr-alerts"));
    if (title) {
      area.appendChild(alertBox(kind, title, detail));
    }
    fit();
  }

  function failed(err) {
    if (err.status === 401) {
      // The page session ran out: the portal opens the page anew with fresh data.
      flash("warn", t("error.session"));
      $("lr-alerts").firstChild.appendChild(h("button", {
        class: "lr-btn lr-btn-sm", type: "button", text: t("error.reload"),
        onclick: function () {
          if (b24) {
            b24.parent.reloadWindow().catch(function () {});
          } else {
            window.location.reload();
          }
        }
      }));
      return;
    }
    flash("bad", err.message || t("error.generic"),
      err.data && err.data.request_id ? t("error.request_id") + " " + err.data.request_id : "");
  }

  // ---- State ----

  var state = {
    settings: null, // the draft being edited
    saved: "", // the JSON of the last saved version, to tell whether the draft changed
    version: 0,
    catalog: { sources: [], statuses: [], fields: [], users: [] },
    names: {}, // user ID → name, from the catalog and the portal's picker
    errors: {}, // field path → message from the last save
    tab: "overview"
  };

  var canEdit = !!cfg.admin;

  function userName(id) {
    return state.names[id] || tf("people.unknown", { id: id });
  }

  function dirty() {
    return state.settings !== null && JSON.stringify(state.settings) !== state.saved;
  }

  function updateSaveBar() {
    if (!canEdit) {
      return;
    }
    var status = $("lr-save-status");
    var changed = dirty();
    $("lr-save").disabled = !changed;
    $("lr-discard").disabled = !changed;
    var count = Object.keys(state.errors).length;
    if (count > 0) {
      status.textContent = tf("save.invalid", { count: count });
    } else if (changed) {
      status.textContent = t("save.unsaved");
    } else {
      status.textContent = state.version > 0 ? tf("save.saved", { version: state.version }) : t("save.defaults");
    }
  }

  // changed is called after every edit of the draft.
  function changed() {
    updateSaveBar();
  }

  function uid(prefix) {
    return prefix + Math.random().toString(36).slice(2, 8);
  }

  // ---- Fields bound to the draft ----

  // fieldError returns the element showing the save error of path, if any.
  function fieldError(path) {
    var msg = state.errors[path];
    return msg ? h("div", { class: "lr-error", "data-error-for": path, text: msg }) : null;
  }

  function invalidClass(path, base) {
    return base + (state.errors[path] ? " lr-invalid" : "");
  }

  function textInput(path, value, onInput, opts) {
    opts = opts || {};
    return h("input", {
      class: invalidClass(path, "lr-input " + (opts.size || "")),
      type: opts.type || "text",
      value: value === undefined || value === null ? "" : value,
      placeholder: opts.placeholder,
      "data-path": path,
      "aria-label": opts.label,
      disabled: !canEdit,
      oninput: function (e) { onInput(e.target.value); changed(); }
    });
  }

  function numberInput(path, value, onInput, label) {
    return textInput(path, value ? String(value) : "", function (v) {
      var n = parseInt(v, 10);
      onInput(isNaN(n) ? 0 : n);
    }, { size: "lr-input-sm", type: "number", label: label, placeholder: "—" });
  }

  function select(path, value, options, onChange, label) {
    var el = h("select", {
      class: invalidClass(path, "lr-select"),
      "data-path": path,
      "aria-label": label,
      disabled: !canEdit,
      onchange: function (e) { onChange(e.target.value); changed(); }
    });
    options.forEach(function (o) {
      el.appendChild(h("option", { value: o.value, text: o.label, selected: o.value === value }));
    });
    el.value = value;
    return el;
  }

  function checkbox(path, checked, label, onChange) {
    return h("label", { class: "lr-check" },
      h("input", {
        type: "checkbox", checked: checked, "data-path": path, disabled: !canEdit,
        onchange: function (e) { onChange(e.target.checked); changed(); }
      }), label);
  }

  function labelled(label, control, path) {
    return h("label", { class: "lr-field" }, label, control, path ? fieldError(path) : null);
  }

  // ---- Pickers (the portal's own dialogs) ----

  function pickUsers(multiple) {
    if (!b24) {
      flash("warn", t("error.no_portal"));
      return Promise.resolve([]);
    }
    var pick = multiple ? b24.dialog.selectUsers() : b24.dialog.selectUser();
    return pick.then(function (res) {
      var list = Array.isArray(res) ? res : (res && res.id ? [res] : []);
      return list.map(function (u) {
        var id = parseInt(u.id, 10);
        if (u.name) {
          state.names[id] = u.name;
        }
        return id;
      }).filter(function (id) { return id > 0; });
    });
  }

  // ---- Tabs ----

  var sections = {
    overview: renderOverview,
    teams: renderTeams,
    rules: renderRules,
    try: renderTry,
    log: renderLog,
    versions: renderVersions,
    intake: renderIntake,
    state: renderState
  };

  function showTab(name) {
    state.tab = name;
    Object.keys(sections).forEach(function (key) {
      var tab = $("lr-tab-" + key);
      if (tab) {
        tab.setAttribute("aria-selected", key === name ? "true" : "false");
      }
      $("lr-section-" + key).classList.toggle("lr-hidden", key !== name);
    });
    sections[name]($("lr-section-" + name));
    fit();
  }

  function rerender() {
    showTab(state.tab);
    updateSaveBar();
  }

  // ---- Overview ----

  function renderOverview(root) {
    clear(root).appendChild(h("div", { class: "lr-card" }, h("p", { class: "lr-hint", text: t("common.loading") })));
    api("GET", "/overview").then(function (ov) {
      clear(root);
      root.appendChild(h("div", { class: "lr-grid" },
        metric(ov.totals.today, t("overview.today_total")),
        metric(ov.totals.week, t("overview.week_total")),
        metric(ov.queue.pending, t("overview.queue_pending"), ov.queue.healthy ? "ok" : "warn"),
        metric(ov.dead_letters.length, t("overview.dead_letters"),
          ov.dead_letters.length ? "bad" : "ok"),
        ov.intake_dead.available ? intakeDeadMetric(ov.intake_dead.total) : null));
      root.appendChild(chartCard(ov.people));
      root.appendChild(peopleSkipsCard(ov.people_skips));
      root.appendChild(h("div", { class: "lr-grid" }, skipsCard(ov.skips), queueCard(ov.queue)));
      root.appendChild(deadLettersCard(ov.dead_letters));
      fit();
    }, function (err) { failed(err); });
  }

  function metric(value, label, kind) {
    return h("div", { class: "lr-card" },
      h("div", { class: "lr-metric", text: value }),
      h("div", { class: "lr-metric-label" }, label, kind ? " " : "",
        kind ? h("span", { class: "lr-badge lr-badge-" + kind, text: t("badge." + kind) }) : null));
  }

  // intakeDeadMetric counts the intake posts that did not become leads; they are
  // listed and sent again on the Intake tab, which the button opens.
  function intakeDeadMetric(total) {
    var card = metric(total, t("overview.intake_dead"), total ? "bad" : "ok");
    card.id = "lr-intake-dead-count";
    card.appendChild(h("button", { class: "lr-btn lr-btn-sm", type: "button",
      text: t("overview.intake_dead_open"), onclick: function () { showTab("intake"); } }));
    return card;
  }

  // chartCard draws leads per person as bars: today, this week, and the share the
  // weights promise against the share received this week.
  function chartCard(people) {
    var card = h("div", { class: "lr-card", id: "lr-chart" }, h("h3", { text: t("overview.chart") }));
    if (!people || people.length === 0) {
      card.appendChild(h("p", { class: "lr-hint", text: t("overview.no_leads") }));
      return card;
    }
    var max = 1;
    people.forEach(function (p) { max = Math.max(max, p.week, p.today); });
    var chart = h("div", { class: "lr-chart" });
    people.forEach(function (p) {
      var share = Math.round(p.share * 100);
      var ideal = Math.round(p.ideal_share * 100);
      chart.appendChild(h("div", { class: "lr-chart-row", "data-user": p.user_id },
        h("div", null, h("div", { class: "lr-chart-name", text: p.name }),
          h("div", { class: "lr-hint", text: tf("overview.fairness", { share: share, ideal: ideal }) })),
        h("div", { class: "lr-chart-bars" },
          h("div", { class: "lr-bar", style: "width:" + (100 * p.today / max) + "%", title: t("overview.today") }),
          h("div", { class: "lr-bar lr-bar-week", style: "width:" + (100 * p.week / max) + "%", title: t("overview.week") })),
        h("div", { class: "lr-chart-count", text: p.today + " / " + p.week })));
    });
    card.appendChild(chart);
    card.appendChild(h("div", { class: "lr-chart-legend" },
      h("span", null, h("span", { class: "lr-swatch", style: "background:var(--ui-color-primary)" }), t("overview.today")),
      h("span", null, h("span", { class: "lr-swatch", style: "background:var(--ui-color-chart-week)" }), t("overview.week"))));
    return card;
  }

  // peopleSkipsCard shows why decisions passed people over: one row per reason
  // with its counts, and the people it concerned under it.
  function peopleSkipsCard(ps) {
    var card = h("div", { class: "lr-card", id: "lr-people-skips" }, h("h3", { text: t("overview.people_skips") }));
    var reasons = (ps && ps.reasons) || [];
    if (reasons.length === 0) {
      card.appendChild(h("p", { class: "lr-hint", text: t("overview.people_skips_none") }));
      return card;
    }
    card.appendChild(h("table", { class: "lr-table" }, h("tbody", null, reasons.map(function (r) {
      return h("tr", { "data-reason": r.reason },
        h("td", null, h("strong", { text: r.label }),
          h("div", { class: "lr-hint", text: r.people.map(function (p) {
            return p.name + " (" + p.week + ")";
          }).join(", ") })),
        h("td", { text: tf("overview.skip_counts", { today: r.today, week: r.week }) }));
    }))));
    if (!ps.complete) {
      card.appendChild(h("p", { class: "lr-hint", text: t("overview.people_skips_partial") }));
    }
    return card;
  }

  function skipsCard(skips) {
    var card = h("div", { class: "lr-card", id: "lr-skips" }, h("h3", { text: t("overview.skips") }));
    if (!skips || skips.length === 0) {
      card.appendChild(h("p", { class: "lr-hint", text: t("overview.no_skips") }));
      return card;
    }
    card.appendChild(h("table", { class: "lr-table" }, h("tbody", null, skips.map(function (s) {
      return h("tr", null, h("td", { text: s.label }), h("td", { text: s.count }));
    }))));
    return card;
  }

  function queueCard(q) {
    return h("div", { class: "lr-card", id: "lr-queue" }, h("h3", { text: t("overview.queue") }),
      h("p", null, h("span", { class: "lr-badge lr-badge-" + (q.healthy ? "ok" : "warn"),
        text: q.healthy ? t("overview.queue_ok") : t("overview.queue_slow") })),
      h("p", { class: "lr-hint", text: tf("overview.queue_detail", { pending: q.pending, age: q.oldest_age_seconds }) }));
  }

  function deadLettersCard(items) {
    var card = h("div", { class: "lr-card", id: "lr-dead" }, h("h3", { text: t("overview.dead_title") }));
    if (!items || items.length === 0) {
      card.appendChild(h("p", { class: "lr-hint", text: t("overview.dead_none") }));
      return card;
    }
    card.appendChild(h("table", { class: "lr-table" },
      h("thead", null, h("tr", null, h("th", { text: t("log.lead") }), h("th", { text: t("overview.dead_error") }),
        h("th", { text: t("log.when") }), h("th"))),
      h("tbody", null, items.map(function (d) {
        return h("tr", null, h("td", null, leadLink(d.lead_id)), h("td", { text: d.error }),
          h("td", { text: when(d.at) }),
          h("td", null, canEdit ? h("button", {
            class: "lr-btn lr-btn-sm", type: "button", text: t("overview.retry"),
            onclick: function () {
              api("POST", "/dead-letters/" + encodeURIComponent(d.id) + "/retry").then(function () {
                flash("ok", t("overview.retried"));
                rerender();
              }, failed);
            }
          }) : null));
      }))));
    return card;
  }

  function when(iso) {
    if (!iso) {
      return "";
    }
    var d = new Date(iso);
    return isNaN(d.getTime()) ? String(iso) : d.toLocaleString(cfg.locale);
  }

  function leadLink(id) {
    if (!id) {
      return h("span", { class: "lr-muted", text: "—" });
    }
    var url = cfg.portal_url + "/crm/lead/details/" + id + "/";
    return h("a", {
      href: url, target: "_top", class: "lr-lead-link", text: "#" + id,
      onclick: function (e) {
        if (b24) {
          e.preventDefault();
          b24.slider.openPath(url).catch(function () {});
        }
      }
    });
  }

  // ---- Teams ----

  var strategies = ["round_robin", "weighted", "random", "least_loaded", "longest_waiting", "first_available"];
  var weekdays = [1, 2, 3, 4, 5, 6, 7];

  function renderTeams(root) {
    clear(root);
    if (!state.settings) {
      return;
    }
    var card = h("div", { class: "lr-card" }, h("h2", { text: t("teams.title") }),
      h("p", { class: "lr-hint", text: t("teams.hint") }));
    state.settings.teams.forEach(function (team, i) {
      card.appendChild(teamBox(team, i));
    });
    if (state.settings.teams.length === 0) {
      card.appendChild(h("p", { class: "lr-hint", id: "lr-no-teams", text: t("teams.none") }));
    }
    if (canEdit) {
      card.appendChild(h("button", {
        class: "lr-btn", type: "button", id: "lr-add-team", text: t("teams.add"),
        onclick: function () {
          state.settings.teams.push({
            id: uid("team-"), name: tf("teams.default_name", { n: state.settings.teams.length + 1 }),
            strategy: "round_robin", members: [], fallback: {}
          });
          changed();
          rerender();
        }
      }));
    }
    root.appendChild(card);
  }

  function teamBox(team, i) {
    var p = "teams[" + i + "]";
    var box = h("div", { class: "lr-team", "data-team": team.id });
    box.appendChild(h("div", { class: "lr-row" },
      labelled(t("teams.name"), textInput(p + ".name", team.name, function (v) { team.name = v; },
        { size: "lr-input-md", label: t("teams.name") }), p + ".name"),
      labelled(t("teams.strategy"), select(p + ".strategy", team.strategy, strategies.map(function (s) {
        return { value: s, label: t("strategy." + s) };
      }), function (v) { team.strategy = v; }, t("teams.strategy")), p + ".strategy"),
      labelled(t("teams.fallback"), targetSelect(p + ".fallback", team.fallback, function (v) { team.fallback = v; }, team.id),
        p + ".fallback.team"),
      h("span", { class: "lr-spacer" }),
      canEdit ? h("button", {
        class: "lr-btn lr-btn-link lr-btn-danger", type: "button", text: t("teams.remove"),
        onclick: function () { state.settings.teams.splice(i, 1); changed(); rerender(); }
      }) : null));
    box.appendChild(h("div", { class: "lr-row" },
      checkbox(p + ".require_clock_in", !!team.require_clock_in, t("teams.require_clock_in"), function (v) {
        team.require_clock_in = v;
        if (!v) {
          team.break_counts = false;
        }
        rerender();
      }),
      checkbox(p + ".break_counts", !!team.break_counts, t("teams.break_counts"), function (v) { team.break_counts = v; }),
      checkbox(p + ".schedule", !!team.schedule, t("teams.has_schedule"), function (v) {
        team.schedule = v ? { days: [1, 2, 3, 4, 5], from: "09:00", to: "18:00" } : undefined;
        rerender();
      }),
      checkbox(p + ".deadline", !!team.deadline, t("teams.deadline"), function (v) {
        team.deadline = v ? { minutes: 30 } : undefined;
        rerender();
      })));
    if (team.strategy === "least_loaded") {
      // How many leads in a row one person may get while catching up with the others.
      box.appendChild(h("div", { class: "lr-row" },
        labelled(t("teams.max_streak"), numberInput(p + ".max_streak", team.max_streak, function (v) {
          team.max_streak = v || undefined;
        }, t("teams.max_streak")), p + ".max_streak")));
    }
    if (team.deadline) {
      // A lead whose owner has not changed its status in time goes to the next person
      // of the team; an empty number of passes means until everyone had it once.
      box.appendChild(h("div", { class: "lr-row" },
        labelled(t("teams.deadline_minutes"),
          numberInput(p + ".deadline.minutes", team.deadline.minutes, function (v) {
            team.deadline.minutes = v;
          }, t("teams.deadline_minutes")), p + ".deadline.minutes"),
        labelled(t("teams.deadline_max_passes"),
          numberInput(p + ".deadline.max_passes", team.deadline.max_passes, function (v) {
            team.deadline.max_passes = v || undefined;
          }, t("teams.deadline_max_passes")), p + ".deadline.max_passes")));
    }
    append(box, fieldError(p + ".break_counts"));
    if (team.schedule) {
      box.appendChild(scheduleEditor(p + ".schedule", team.schedule));
    }
    box.appendChild(membersTable(team, p));
    append(box, fieldError(p + ".members"));
    if (canEdit) {
      box.appendChild(h("button", {
        class: "lr-btn lr-btn-sm", type: "button", "data-add-people": team.id, text: t("teams.add_people"),
        onclick: function () {
          pickUsers(true).then(function (ids) {
            ids.forEach(function (id) {
              if (!team.members.some(function (m) { return m.user_id === id; })) {
                team.members.push({ user_id: id, weight: 1 });
              }
            });
            changed();
            rerender();
          });
        }
      }));
    }
    return box;
  }

  function scheduleEditor(p, sc) {
    return h("div", { class: "lr-row" },
      weekdays.map(function (d) {
        return checkbox(p + ".days", sc.days.indexOf(d) >= 0, t("day." + d), function (v) {
          sc.days = sc.days.filter(function (x) { return x !== d; });
          if (v) {
            sc.days.push(d);
            sc.days.sort();
          }
        });
      }),
      labelled(t("schedule.from"), textInput(p + ".from", sc.from, function (v) { sc.from = v; }, { size: "lr-input-sm", placeholder: "09:00" }), p + ".from"),
      labelled(t("schedule.to"), textInput(p + ".to", sc.to, function (v) { sc.to = v; }, { size: "lr-input-sm", placeholder: "18:00" }), p + ".to"),
      labelled(t("schedule.time_zone"), textInput(p + ".time_zone", sc.time_zone, function (v) { sc.time_zone = v || undefined; },
        { size: "lr-input-md", placeholder: t("schedule.tz_placeholder") }), p + ".time_zone"),
      fieldError(p + ".days"));
  }

  function membersTable(team, p) {
    if (team.members.length === 0) {
      return h("p", { class: "lr-hint", text: t("teams.no_members") });
    }
    return h("table", { class: "lr-table lr-members" },
      h("thead", null, h("tr", null,
        h("th", { text: t("members.person") }), h("th", { text: t("members.weight") }),
        h("th", { text: t("members.daily_cap") }), h("th", { text: t("members.open_cap") }),
        h("th", { text: t("members.hours") }), h("th", { text: t("members.time_zone") }),
        h("th", { text: t("members.paused") }), h("th"))),
      h("tbody", null, team.members.map(function (m, j) {
        var mp = p + ".members[" + j + "]";
        return h("tr", { "data-user": m.user_id },
          h("td", null, h("span", { class: "lr-member-name", text: userName(m.user_id) }), fieldError(mp + ".user_id")),
          h("td", null, numberInput(mp + ".weight", m.weight, function (v) { m.weight = v; }, t("members.weight")), fieldError(mp + ".weight")),
          h("td", null, numberInput(mp + ".daily_cap", m.daily_cap, function (v) { m.daily_cap = v; }, t("members.daily_cap")), fieldError(mp + ".daily_cap")),
          h("td", null, numberInput(mp + ".open_cap", m.open_cap, function (v) { m.open_cap = v; }, t("members.open_cap")), fieldError(mp + ".open_cap")),
          h("td", null, memberHours(m, mp, team)),
          h("td", null, textInput(mp + ".schedule.time_zone", m.schedule ? m.schedule.time_zone : "", function (v) {
            memberSchedule(m, team).time_zone = v || undefined;
          }, { size: "lr-input-md", placeholder: t("schedule.tz_placeholder"), label: t("members.time_zone") }),
          fieldError(mp + ".schedule.time_zone")),
          h("td", null, checkbox(mp + ".paused", !!m.paused, "", function (v) { m.paused = v; })),
          h("td", null, canEdit ? h("button", {
            class: "lr-btn lr-btn-link lr-btn-danger", type: "button", text: "×", title: t("members.remove"),
            onclick: function () { team.members.splice(j, 1); changed(); rerender(); }
          }) : null));
      })));
  }

  // memberSchedule returns the person's own schedule, starting from the team's.
  function memberSchedule(m, team) {
    if (!m.schedule) {
      var base = team.schedule || { days: [1, 2, 3, 4, 5], from: "09:00", to: "18:00" };
      m.schedule = { days: base.days.slice(), from: base.from, to: base.to, time_zone: base.time_zone };
    }
    return m.schedule;
  }

  function memberHours(m, mp, team) {
    var sc = m.schedule;
    var value = sc ? sc.from + "–" + sc.to : "";
    return h("span", null, textInput(mp + ".schedule.from", value, function (v) {
      var parts = v.split(/[-–]/);
      if (v.trim() === "") {
        m.schedule = undefined;
        return;
      }
      var s = memberSchedule(m, team);
      s.from = (parts[0] || "").trim();
      s.to = (parts[1] || "").trim();
    }, { size: "lr-input-md", placeholder: team.schedule ? team.schedule.from + "–" + team.schedule.to : t("members.always"),
      label: t("members.hours") }), fieldError(mp + ".schedule.from"), fieldError(mp + ".schedule.to"));
  }

  // targetSelect edits a Target as one select: hold, a team, or a person.
  function targetSelect(path, target, onChange, ownTeam) {
    target = target || {};
    var options = [{ value: "hold", label: t("target.hold") }];
    state.settings.teams.forEach(function (team) {
      if (team.id !== ownTeam) {
        options.push({ value: "team:" + team.id, label: tf("target.team", { name: team.name }) });
      }
    });
    var people = {};
    state.settings.teams.forEach(function (team) {
      team.members.forEach(function (m) { people[m.user_id] = true; });
    });
    if (target.kind === "person" && target.user) {
      people[target.user] = true;
    }
    Object.keys(people).forEach(function (id) {
      options.push({ value: "person:" + id, label: tf("target.person", { name: userName(id) }) });
    });
    options.push({ value: "pick", label: t("target.pick") });
    var value = "hold";
    if (target.kind === "team") {
      value = "team:" + target.team;
    } else if (target.kind === "person") {
      value = "person:" + target.user;
    }
    return select(path, value, options, function (v) {
      if (v === "pick") {
        pickUsers(false).then(function (ids) {
          if (ids.length) {
            onChange({ kind: "person", user: ids[0] });
            changed();
          }
          rerender();
        });
        return;
      }
      var parts = v.split(":");
      if (parts[0] === "team") {
        onChange({ kind: "team", team: parts.slice(1).join(":") });
      } else if (parts[0] === "person") {
        onChange({ kind: "person", user: parseInt(parts[1], 10) });
      } else {
        onChange({ kind: "hold" });
      }
    }, t("target.label"));
  }

  // ---- Rules ----

  var operators = ["equals", "not_equals", "in", "not_in", "contains", "not_contains", "starts_with",
    "gt", "gte", "lt", "lte", "between", "empty", "not_empty", "matches"];
  var standardFields = ["SOURCE_ID", "STATUS_ID", "OPPORTUNITY", "CURRENCY_ID", "TITLE", "COMMENTS",
    "ADDRESS_CITY", "ADDRESS_REGION", "ADDRESS_COUNTRY", "UTM_SOURCE", "UTM_MEDIUM", "UTM_CAMPAIGN",
    "UTM_CONTENT", "UTM_TERM", "PHONE", "EMAIL"];

  function fieldOptions() {
    var opts = standardFields.map(function (f) { return { value: f, label: t("field." + f) }; });
    state.catalog.fields.forEach(function (f) {
      if (standardFields.indexOf(f.id) < 0) {
        opts.push({ value: f.id, label: f.title });
      }
    });
    return opts;
  }

  function renderRules(root) {
    clear(root);
    if (!state.settings) {
      return;
    }
    root.appendChild(scopeCard());
    var card = h("div", { class: "lr-card" }, h("h2", { text: t("rules.title") }),
      h("p", { class: "lr-hint", text: t("rules.hint") }));
    var list = h("div", { id: "lr-rules" });
    state.settings.rules.forEach(function (rule, i) {
      list.appendChild(ruleRow(rule, i));
    });
    card.appendChild(list);
    if (state.settings.rules.length === 0) {
      card.appendChild(h("p", { class: "lr-hint", text: t("rules.none") }));
    }
    if (canEdit) {
      card.appendChild(h("button", {
        class: "lr-btn", type: "button", id: "lr-add-rule", text: t("rules.add"),
        onclick: function () {
          var first = state.settings.teams[0];
          state.settings.rules.push({
            id: uid("rule-"), name: tf("rules.default_name", { n: state.settings.rules.length + 1 }),
            conditions: [{ field: "SOURCE_ID", op: "equals", value: "" }],
            target: first ? { kind: "team", team: first.id } : { kind: "hold" }
          });
          changed();
          rerender();
        }
      }));
    }
    card.appendChild(h("div", { class: "lr-row", style: "margin-top:16px" },
      labelled(t("rules.default"), targetSelect("default", state.settings.default, function (v) {
        state.settings.default = v;
      }), "default.team")));
    root.appendChild(card);
  }

  function scopeCard() {
    var s = state.settings;
    var sc = s.scope;
    var card = h("div", { class: "lr-card", id: "lr-scope" }, h("h2", { text: t("scope.title") }));
    card.appendChild(h("div", { class: "lr-row" },
      labelled(t("scope.mode"), select("scope.mode", sc.mode || "all", ["all", "sources", "assigned_to"].map(function (m) {
        return { value: m, label: t("scope." + m) };
      }), function (v) { sc.mode = v; rerender(); }), "scope.mode"),
      checkbox("scope.keep_manual", !!sc.keep_manual, t("scope.keep_manual"), function (v) { sc.keep_manual = v; }),
      checkbox("existing_client.enabled", !!s.existing_client.enabled, t("scope.existing_client"), function (v) {
        s.existing_client.enabled = v;
      })));
    if (sc.mode === "sources") {
      sc.sources = sc.sources || [];
      card.appendChild(h("div", { class: "lr-row", "data-path": "scope.sources" },
        state.catalog.sources.map(function (src) {
          return checkbox("scope.sources", sc.sources.indexOf(src.id) >= 0, src.name, function (v) {
            sc.sources = sc.sources.filter(function (x) { return x !== src.id; });
            if (v) {
              sc.sources.push(src.id);
            }
          });
        })));
      append(card, fieldError("scope.sources"));
    }
    if (sc.mode === "assigned_to") {
      sc.users = sc.users || [];
      card.appendChild(h("div", { class: "lr-row" },
        sc.users.map(function (id) { return h("span", { class: "lr-badge", text: userName(id) }); }),
        canEdit ? h("button", {
          class: "lr-btn lr-btn-sm", type: "button", text: t("scope.pick_users"),
          onclick: function () {
            pickUsers(true).then(function (ids) {
              if (ids.length) {
                sc.users = ids;
                changed();
              }
              rerender();
            });
          }
        }) : null));
      append(card, fieldError("scope.users"));
    }
    var again = (s.reroute && s.reroute.statuses) || [];
    card.appendChild(h("p", { class: "lr-hint", text: t("scope.reroute") }));
    card.appendChild(h("div", { class: "lr-row", "data-path": "reroute.statuses" },
      (state.catalog.statuses || []).map(function (st) {
        return checkbox("reroute.statuses", again.indexOf(st.id) >= 0, st.name, function (v) {
          s.reroute = s.reroute || {};
          var list = (s.reroute.statuses || []).filter(function (x) { return x !== st.id; });
          if (v) {
            list.push(st.id);
          }
          s.reroute.statuses = list;
        });
      })));
    append(card, fieldError("reroute.statuses"));
    return card;
  }

  var dragFrom = -1;

  function ruleRow(rule, i) {
    var p = "rules[" + i + "]";
    var row = h("div", { class: "lr-rule", draggable: canEdit ? "true" : null, "data-rule": rule.id, "data-index": i });
    if (canEdit) {
      row.addEventListener("dragstart", function (e) {
        dragFrom = i;
        row.classList.add("lr-dragging");
        e.dataTransfer.effectAllowed = "move";
        e.dataTransfer.setData("text/plain", String(i));
      });
      row.addEventListener("dragend", function () { row.classList.remove("lr-dragging"); });
      row.addEventListener("dragover", function (e) { e.preventDefault(); row.classList.add("lr-drop-target"); });
      row.addEventListener("dragleave", function () { row.classList.remove("lr-drop-target"); });
      row.addEventListener("drop", function (e) {
        e.preventDefault();
        moveRule(dragFrom, i);
      });
    }
    var body = h("div", { class: "lr-rule-body" });
    body.appendChild(h("div", { class: "lr-row" },
      labelled(t("rules.name"), textInput(p + ".name", rule.name, function (v) { rule.name = v; }, { size: "lr-input-md" }), p + ".name"),
      labelled(t("rules.match"), select(p + ".any", rule.any ? "any" : "all", [
        { value: "all", label: t("rules.all") }, { value: "any", label: t("rules.any") }
      ], function (v) { rule.any = v === "any"; })),
      labelled(t("rules.target"), targetSelect(p + ".target", rule.target, function (v) { rule.target = v; }),
        p + ".target.kind"),
      checkbox(p + ".disabled", !!rule.disabled, t("rules.disabled"), function (v) { rule.disabled = v; }),
      h("span", { class: "lr-spacer" }),
      canEdit ? h("button", { class: "lr-btn lr-btn-link", type: "button", text: "↑", title: t("rules.up"),
        onclick: function () { moveRule(i, i - 1); } }) : null,
      canEdit ? h("button", { class: "lr-btn lr-btn-link", type: "button", text: "↓", title: t("rules.down"),
        onclick: function () { moveRule(i, i + 1); } }) : null,
      canEdit ? h("button", { class: "lr-btn lr-btn-link lr-btn-danger", type: "button", text: t("rules.remove"),
        onclick: function () { state.settings.rules.splice(i, 1); changed(); rerender(); } }) : null));
    append(body, fieldError(p + ".target.team"));
    append(body, fieldError(p + ".target.user"));
    rule.conditions.forEach(function (c, k) {
      body.appendChild(conditionRow(rule, c, p + ".conditions[" + k + "]", k));
    });
    append(body, fieldError(p + ".conditions"));
    if (canEdit) {
      body.appendChild(h("button", {
        class: "lr-btn lr-btn-link lr-btn-sm", type: "button", text: t("rules.add_condition"),
        onclick: function () { rule.conditions.push({ field: "TITLE", op: "contains", value: "" }); changed(); rerender(); }
      }));
    }
    row.appendChild(h("span", { class: "lr-handle", title: t("rules.drag"), text: "⋮⋮" }));
    row.appendChild(h("span", { class: "lr-rule-number", text: i + 1 }));
    row.appendChild(body);
    return row;
  }

  function moveRule(from, to) {
    var rules = state.settings.rules;
    if (from < 0 || to < 0 || from >= rules.length || to >= rules.length || from === to) {
      return;
    }
    var moved = rules.splice(from, 1)[0];
    rules.splice(to, 0, moved);
    changed();
    rerender();
  }

  // choices returns the portal's values for fields that have a fixed list.
  function choices(field) {
    if (field === "SOURCE_ID") {
      return state.catalog.sources;
    }
    if (field === "STATUS_ID") {
      return state.catalog.statuses;
    }
    var custom = state.catalog.fields.filter(function (f) { return f.id === field; })[0];
    return custom && custom.items && custom.items.length ? custom.items : null;
  }

  function conditionRow(rule, c, p, k) {
    var row = h("div", { class: "lr-row lr-condition" },
      select(p + ".field", c.field, fieldOptions(), function (v) { c.field = v; c.value = ""; c.values = undefined; rerender(); }, t("rules.field")),
      select(p + ".op", c.op, operators.map(function (o) { return { value: o, label: t("op." + o) }; }),
        function (v) { c.op = v; rerender(); }, t("rules.op")),
      conditionValue(c, p),
      canEdit ? h("button", { class: "lr-btn lr-btn-link lr-btn-danger", type: "button", text: "×",
        onclick: function () { rule.conditions.splice(k, 1); changed(); rerender(); } }) : null);
    return h("div", null, row, fieldError(p + ".field"), fieldError(p + ".op"),
      fieldError(p + ".value"), fieldError(p + ".values"));
  }

  function conditionValue(c, p) {
    if (c.op === "empty" || c.op === "not_empty") {
      return null;
    }
    var list = choices(c.field);
    if (c.op === "in" || c.op === "not_in") {
      if (list) {
        c.values = c.values || [];
        return h("span", { class: "lr-row", "data-path": p + ".values" }, list.map(function (o) {
          return checkbox(p + ".values", c.values.indexOf(o.id) >= 0, o.name, function (v) {
            c.values = c.values.filter(function (x) { return x !== o.id; });
            if (v) {
              c.values.push(o.id);
            }
          });
        }));
      }
      return textInput(p + ".values", (c.values || []).join(", "), function (v) {
        c.values = v.split(",").map(function (s) { return s.trim(); }).filter(Boolean);
      }, { size: "lr-input-md", placeholder: t("rules.values_placeholder") });
    }
    if (c.op === "between") {
      var vals = c.values || [];
      return textInput(p + ".values", vals.join(" – "), function (v) {
        c.value = undefined;
        c.values = v.split(/[-–]/).map(function (s) { return s.trim(); }).filter(Boolean);
      }, { size: "lr-input-md", placeholder: "1000 – 5000" });
    }
    if (list && (c.op === "equals" || c.op === "not_equals")) {
      var opts = [{ value: "", label: t("rules.choose") }].concat(list.map(function (o) {
        return { value: o.id, label: o.name };
      }));
      return select(p + ".value", c.value || "", opts, function (v) { c.value = v; }, t("rules.value"));
    }
    return textInput(p + ".value", c.value, function (v) { c.value = v; }, { size: "lr-input-md", label: t("rules.value") });
  }

  // ---- Try it ----

  var trial = { leads: [{ TITLE: "", SOURCE_ID: "", OPPORTUNITY: "", PHONE: "" }], report: null };

  function renderTry(root) {
    clear(root);
    var card = h("div", { class: "lr-card" }, h("h2", { text: t("try.title") }),
      h("p", { class: "lr-hint", text: t("try.hint") }));
    var table = h("table", { class: "lr-table", id: "lr-try-leads" },
      h("thead", null, h("tr", null, h("th", { text: t("field.TITLE") }), h("th", { text: t("field.SOURCE_ID") }),
        h("th", { text: t("field.OPPORTUNITY") }), h("th", { text: t("field.PHONE") }), h("th"))),
      h("tbody", null, trial.leads.map(function (lead, i) {
        var srcOpts = [{ value: "", label: "—" }].concat(state.catalog.sources.map(function (s) {
          return { value: s.id, label: s.name };
        }));
        return h("tr", null,
          h("td", null, h("input", { class: "lr-input", value: lead.TITLE, "data-try": "TITLE",
            oninput: function (e) { lead.TITLE = e.target.value; } })),
          h("td", null, h("select", { class: "lr-select", "data-try": "SOURCE_ID",
            onchange: function (e) { lead.SOURCE_ID = e.target.value; } },
            srcOpts.map(function (o) { return h("option", { value: o.value, text: o.label, selected: o.value === lead.SOURCE_ID }); }))),
          h("td", null, h("input", { class: "lr-input lr-input-md", value: lead.OPPORTUNITY, "data-try": "OPPORTUNITY",
            oninput: function (e) { lead.OPPORTUNITY = e.target.value; } })),
          h("td", null, h("input", { class: "lr-input lr-input-md", value: lead.PHONE, "data-try": "PHONE",
            oninput: function (e) { lead.PHONE = e.target.value; } })),
          h("td", null, h("button", { class: "lr-btn lr-btn-link lr-btn-danger", type: "button", text: "×",
            onclick: function () { trial.leads.splice(i, 1); renderTry(root); fit(); } })));
      })));
    card.appendChild(table);
    card.appendChild(h("div", { class: "lr-row" },
      h("button", { class: "lr-btn lr-btn-sm", type: "button", text: t("try.add_lead"),
        onclick: function () { trial.leads.push({ TITLE: "", SOURCE_ID: "", OPPORTUNITY: "", PHONE: "" }); renderTry(root); fit(); } }),
      h("span", { class: "lr-spacer" }),
      h("button", { class: "lr-btn", type: "button", id: "lr-try-recent", text: t("try.recent"),
        onclick: function () { runTrial(root, { recent: 500 }); } }),
      h("button", { class: "lr-btn lr-btn-primary", type: "button", id: "lr-try-run", text: t("try.run"),
        onclick: function () {
          var leads = trial.leads.filter(function (l) { return l.TITLE || l.SOURCE_ID || l.OPPORTUNITY || l.PHONE; });
          runTrial(root, { leads: leads });
        } })));
    root.appendChild(card);
    if (trial.report) {
      root.appendChild(reportCard(trial.report));
    }
  }

  function runTrial(root, body) {
    body.settings = state.settings;
    api("POST", "/simulate", body).then(function (report) {
      trial.report = report;
      flash();
      renderTry(root);
      fit();
    }, function (err) {
      if (err.data && err.data.fields) {
        state.errors = err.data.fields;
        flash("bad", t("try.invalid"));
        updateSaveBar();
        return;
      }
      failed(err);
    });
  }

  function reportCard(report) {
    var card = h("div", { class: "lr-card", id: "lr-try-report" }, h("h3", { text: t("try.result") }));
    card.appendChild(h("div", { class: "lr-row" }, report.people.map(function (p) {
      return h("span", { class: "lr-badge lr-badge-ok", text: p.name + ": " + p.count });
    }), report.held ? h("span", { class: "lr-badge lr-badge-warn", text: tf("try.held", { count: report.held }) }) : null,
    report.not_routed ? h("span", { class: "lr-badge", text: tf("try.not_routed", { count: report.not_routed }) }) : null));
    card.appendChild(h("table", { class: "lr-table" },
      h("thead", null, h("tr", null, h("th", { text: t("log.lead") }), h("th", { text: t("log.person") }),
        h("th", { text: t("log.rule") }), h("th", { text: t("log.reason") }))),
      h("tbody", null, report.leads.map(function (l) {
        return h("tr", null, h("td", { text: l.title || (l.lead_id ? "#" + l.lead_id : "—") }),
          h("td", { text: l.person || t("outcome." + l.outcome) }), h("td", { text: l.rule || "—" }),
          h("td", { class: "lr-reason", text: l.reason }));
      }))));
    return card;
  }

  // ---- Assignment log ----

  var logQuery = "";

  function renderLog(root) {
    clear(root);
    var input = h("input", { class: "lr-input", id: "lr-log-query", type: "search", value: logQuery,
      placeholder: t("log.search_placeholder"), "aria-label": t("log.search") });
    var results = h("div", { id: "lr-log-results" });
    var form = h("form", { class: "lr-row", onsubmit: function (e) {
      e.preventDefault();
      logQuery = input.value;
      loadLog(results);
    } }, input, h("button", { class: "lr-btn", type: "submit", text: t("log.search") }));
    root.appendChild(h("div", { class: "lr-card" }, h("h2", { text: t("log.title") }), form, results));
    loadLog(results);
  }

  function loadLog(results) {
    api("GET", "/log?q=" + encodeURIComponent(logQuery)).then(function (entries) {
      clear(results);
      if (!entries || entries.length === 0) {
        results.appendChild(h("p", { class: "lr-hint", text: t("log.empty") }));
        fit();
        return;
      }
      results.appendChild(h("table", { class: "lr-table" },
        h("thead", null, h("tr", null, h("th", { text: t("log.when") }), h("th", { text: t("log.lead") }),
          h("th", { text: t("log.person") }), h("th", { text: t("log.rule") }), h("th", { text: t("log.reason") }))),
        h("tbody", null, entries.map(function (e) {
          return h("tr", { "data-lead": e.lead_id },
            h("td", { text: when(e.at) }), h("td", null, leadLink(e.lead_id), e.title ? " " + e.title : ""),
            h("td", { text: e.person || t("outcome." + e.outcome) }), h("td", { text: e.rule || "—" }),
            h("td", { class: "lr-reason", text: e.reason }));
        }))));
      fit();
    }, failed);
  }

  // ---- Versions ----

  function renderVersions(root) {
    clear(root);
    var card = h("div", { class: "lr-card" }, h("h2", { text: t("versions.title") }));
    var diffArea = h("div", { id: "lr-diff" });
    root.appendChild(card);
    api("GET", "/versions").then(function (versions) {
      if (!versions || versions.length === 0) {
        card.appendChild(h("p", { class: "lr-hint", text: t("versions.none") }));
        fit();
        return;
      }
      card.appendChild(h("table", { class: "lr-table", id: "lr-versions" },
        h("thead", null, h("tr", null, h("th", { text: t("versions.version") }), h("th", { text: t("versions.saved_at") }),
          h("th", { text: t("versions.author") }), h("th"))),
        h("tbody", null, versions.map(function (v) {
          return h("tr", { "data-version": v.version },
            h("td", null, "v" + v.version, " ", v.current ? h("span", { class: "lr-badge lr-badge-ok", text: t("versions.current") }) : null,
              v.rollback_of ? h("span", { class: "lr-hint", text: " " + tf("versions.rollback_of", { version: v.rollback_of }) }) : null),
            h("td", { text: when(v.saved_at) }), h("td", { text: v.author_name || "" }),
            h("td", null, h("button", { class: "lr-btn lr-btn-sm", type: "button", text: t("versions.changes"), "data-diff": v.version,
              onclick: function () { showDiff(v.version, diffArea); } }),
            " ",
            canEdit && !v.current ? h("button", { class: "lr-btn lr-btn-sm", type: "button", "data-rollback": v.version,
              text: t("versions.rollback"), onclick: function () { rollback(v.version); } }) : null));
        }))));
      card.appendChild(diffArea);
      fit();
    }, failed);
  }

  function showDiff(version, area) {
    api("GET", "/versions/" + version).then(function (res) {
      clear(area);
      area.appendChild(h("h3", { text: tf("versions.diff_title", { version: version, against: res.against }) }));
      if (!res.changes || res.changes.length === 0) {
        area.appendChild(h("p", { class: "lr-hint", text: t("versions.no_changes") }));
      } else {
        area.appendChild(h("ul", { class: "lr-diff-list" }, res.changes.map(function (c) {
          return h("li", null, h("strong", { text: c.label + ": " }),
            c.before !== "" ? h("span", { class: "lr-diff-del", text: c.before }) : null,
            c.before !== "" && c.after !== "" ? " → " : "",
            c.after !== "" ? h("span", { class: "lr-diff-add", text: c.after }) : null);
        })));
      }
      fit();
    }, failed);
  }

  function rollback(version) {
    if (dirty() && !window.confirm(t("versions.confirm_dirty"))) {
      return;
    }
    api("POST", "/versions/" + version + "/rollback").then(function (res) {
      flash("ok", tf("versions.rolled_back", { version: version, now: res.version }));
      return loadSettings();
    }).then(function () { rerender(); }, failed);
  }

  // ---- Intake ----

  // Secrets are shown once, right after they were made: the server keeps only
  // their hashes, and this page forgets them when it is closed.
  var intakeSecrets = {};

  function renderIntake(root) {
    clear(root);
    var card = h("div", { class: "lr-card" }, h("h2", { text: t("intake.title") }),
      h("p", { class: "lr-hint", text: t("intake.hint") }));
    root.appendChild(card);
    api("GET", "/intake").then(function (res) {
      if (!res.available) {
        card.appendChild(h("p", { class: "lr-hint", text: t("intake.unavailable") }));
        fit();
        return;
      }
      card.appendChild(intakeTable(res.sources || [], root));
      if (canEdit) {
        var name = h("input", { class: "lr-input lr-input-md", id: "lr-intake-name", placeholder: t("intake.name") });
        card.appendChild(h("form", { class: "lr-row", onsubmit: function (e) {
          e.preventDefault();
          api("POST", "/intake", { name: name.value }).then(function (src) {
            intakeSecrets[src.id] = src.secret;
            renderIntake(root);
          }, failed);
        } }, name, h("button", { class: "lr-btn", type: "submit", text: t("intake.add") })));
      }
      fit();
      return api("GET", "/intake/dead-letters").then(function (dead) {
        if (dead.available) {
          root.appendChild(intakeDeadCard(dead, root));
          fit();
        }
      });
    }, failed);
  }

  function intakeTable(sources, root) {
    if (sources.length === 0) {
      return h("p", { class: "lr-hint", text: t("intake.none") });
    }
    return h("table", { class: "lr-table", id: "lr-intake" },
      h("thead", null, h("tr", null, h("th", { text: t("intake.name") }), h("th", { text: t("intake.url") }),
        h("th", { text: t("intake.secret") }), h("th"))),
      h("tbody", null, sources.map(function (s) {
        // Each address has a row of its options under it.
        return [h("tr", { "data-source": s.id },
          h("td", { text: s.name }),
          h("td", null, h("span", { class: "lr-mono", text: s.url }), " ", copyButton(s.url)),
          h("td", null, intakeSecrets[s.id] ? h("span", null, h("span", { class: "lr-mono lr-secret", text: intakeSecrets[s.id] }), " ",
            copyButton(intakeSecrets[s.id]))
            : h("span", { class: "lr-muted", text: t("intake.secret_hidden") })),
          h("td", null, canEdit ? h("button", { class: "lr-btn lr-btn-sm", type: "button", text: t("intake.rotate"),
            onclick: function () {
              api("POST", "/intake/" + encodeURIComponent(s.id) + "/rotate").then(function (res) {
                intakeSecrets[s.id] = res.secret;
                flash("ok", t("intake.rotated"));
                renderIntake(root);
              }, failed);
            } }) : null,
          canEdit ? h("button", { class: "lr-btn lr-btn-link lr-btn-danger lr-btn-sm", type: "button",
            "data-revoke": s.id, text: t("intake.revoke"),
            onclick: function () {
              if (!window.confirm(t("intake.confirm_revoke"))) {
                return;
              }
              api("DELETE", "/intake/" + encodeURIComponent(s.id)).then(function () {
                delete intakeSecrets[s.id];
                flash("ok", t("intake.revoked"));
                renderIntake(root);
              }, failed);
            } }) : null)),
          h("tr", { class: "lr-intake-options" }, h("td", { colspan: 4 }, intakeOptions(s)))];
      })));
  }

  // intakeOptions shows what a source allows. An administrator changes the
  // controls and saves them with the row's button; a reader sees them disabled.
  function intakeOptions(s) {
    var o = s.options || {};
    var errors = {};
    var field = function (key, label, control) {
      errors[key] = h("div", { class: "lr-error", "data-error-for": key });
      return h("label", { class: "lr-field" }, label, control, errors[key]);
    };
    var number = function (key, value, max) {
      return h("input", { class: "lr-input lr-input-sm", type: "number", min: 1, max: max,
        value: String(value), "data-option": key, disabled: !canEdit });
    };
    var allow = h("input", { type: "checkbox", checked: o.allow_responsible,
      "data-option": "allow_responsible", disabled: !canEdit });
    var rate = number("rate_per_minute", o.rate_per_minute, 10000);
    var windowMinutes = number("idempotency_window_minutes", o.idempotency_window_minutes, 10080);
    var crm = crmSourceControl(o.crm_source);
    var save = function () {
      var whole = function (el) {
        var n = parseInt(el.value, 10);
        return isNaN(n) ? 0 : n;
      };
      var body = { allow_responsible: allow.checked, rate_per_minute: whole(rate),
        idempotency_window_minutes: whole(windowMinutes), crm_source: crm.value };
      Object.keys(errors).forEach(function (k) { errors[k].textContent = ""; });
      api("PATCH", "/intake/" + encodeURIComponent(s.id) + "/options", body).then(function () {
        flash("ok", tf("intake.options_saved", { name: s.name }));
      }, function (err) {
        if (err.status !== 422 || !err.data.fields) {
          failed(err);
          return;
        }
        Object.keys(err.data.fields).forEach(function (k) {
          if (errors[k]) {
            errors[k].textContent = err.data.fields[k];
          }
        });
        flash("bad", t("intake.options_failed"), t("save.fix_fields"));
      });
    };
    return h("div", { class: "lr-row", "data-options": s.id },
      h("label", { class: "lr-check" }, allow, t("intake.allow_responsible")),
      field("rate_per_minute", t("intake.rate"), rate),
      field("crm_source", t("intake.crm_source"), crm),
      field("idempotency_window_minutes", t("intake.window"), windowMinutes),
      canEdit ? h("button", { class: "lr-btn lr-btn-sm", type: "button", "data-save-options": s.id,
        text: t("intake.save_options"), onclick: save }) : null);
  }

  // crmSourceControl offers the portal's lead sources, keeping a code the list
  // lacks; without the portal's list, the code is typed.
  function crmSourceControl(code) {
    var sources = state.catalog.sources || [];
    if (sources.length === 0) {
      return h("input", { class: "lr-input lr-input-md", value: code, "data-option": "crm_source",
        disabled: !canEdit });
    }
    var el = h("select", { class: "lr-select", "data-option": "crm_source", disabled: !canEdit });
    if (!sources.some(function (src) { return src.id === code; })) {
      el.appendChild(h("option", { value: code, text: code }));
    }
    sources.forEach(function (src) {
      el.appendChild(h("option", { value: src.id, text: src.name }));
    });
    el.value = code;
    return el;
  }

  // intakeDeadCard lists the posts whose lead could not be created, by source,
  // problem and time; nothing of the person is shown.
  function intakeDeadCard(dead, root) {
    var card = h("div", { class: "lr-card", id: "lr-intake-dead" },
      h("h3", { text: t("intake.dead_title") }));
    var items = dead.dead_letters || [];
    if (items.length === 0) {
      card.appendChild(h("p", { class: "lr-hint", text: t("intake.dead_none") }));
      return card;
    }
    card.appendChild(h("p", { class: "lr-hint", text: t("intake.dead_hint") }));
    if (dead.total > items.length) {
      card.appendChild(h("p", { class: "lr-hint",
        text: tf("intake.dead_more", { shown: items.length, total: dead.total }) }));
    }
    var retry = function (path, message) {
      api("POST", path).then(function (res) {
        flash("ok", tf(message, { count: res.retried }));
        renderIntake(root);
      }, failed);
    };
    if (canEdit) {
      card.appendChild(h("div", { class: "lr-row" }, h("button", { class: "lr-btn lr-btn-sm",
        type: "button", id: "lr-intake-retry-all", text: t("intake.retry_all"),
        onclick: function () { retry("/intake/dead-letters/retry", "intake.retried_all"); } })));
    }
    card.appendChild(h("table", { class: "lr-table" },
      h("thead", null, h("tr", null, h("th", { text: t("intake.dead_source") }),
        h("th", { text: t("overview.dead_error") }), h("th", { text: t("log.when") }), h("th"))),
      h("tbody", null, items.map(function (d) {
        return h("tr", { "data-dead": d.id }, h("td", { text: d.source }),
          h("td", { text: d.problem }), h("td", { text: when(d.at) }),
          h("td", null, canEdit ? h("button", { class: "lr-btn lr-btn-sm", type: "button",
            text: t("overview.retry"), onclick: function () {
              retry("/intake/dead-letters/" + encodeURIComponent(d.id) + "/retry",
                "intake.retried");
            } }) : null));
      }))));
    return card;
  }

  function copyButton(value) {
    return h("button", { class: "lr-btn lr-btn-link lr-btn-sm", type: "button", text: t("common.copy"),
      onclick: function (e) {
        var button = e.target;
        var done = function () { button.textContent = t("common.copied"); };
        if (navigator.clipboard && navigator.clipboard.writeText) {
          navigator.clipboard.writeText(value).then(done, function () { legacyCopy(value); done(); });
        } else {
          legacyCopy(value);
          done();
        }
      } });
  }

  function legacyCopy(value) {
    var area = h("textarea", { style: "position:fixed;opacity:0" });
    area.value = value;
    document.body.appendChild(area);
    area.select();
    try {
      document.execCommand("copy");
    } catch (e) {
      // The text stays selectable on the page; nothing else to do.
    }
    document.body.removeChild(area);
  }

  // ---- State of the install and access ----

  function renderState(root) {
    clear(root);
    var card = h("div", { class: "lr-card", id: "lr-install-state" }, h("h2", { text: t("state.title") }));
    root.appendChild(card);
    api("GET", "/state").then(function (st) {
      card.appendChild(h("p", null, t("state.status") + ": ",
        h("span", { class: "lr-badge lr-badge-" + (st.status === "active" ? "ok" : "bad"), text: t("status." + st.status) })));
      if (!st.problems || st.problems.length === 0) {
        card.appendChild(alertBox("ok", t("state.all_good")));
      }
      (st.problems || []).forEach(function (p) {
        card.appendChild(alertBox(p.severity === "error" ? "bad" : "warn", p.title, p.action));
      });
      root.appendChild(accessCard(st.readers || []));
      fit();
    }, failed);
  }

  function accessCard(readers) {
    var card = h("div", { class: "lr-card", id: "lr-access" }, h("h2", { text: t("access.title") }),
      h("p", { class: "lr-hint", text: t("access.hint") }));
    readers.forEach(function (r) { state.names[r.id] = r.name; });
    card.appendChild(h("div", { class: "lr-row" }, readers.length ? readers.map(function (r) {
      return h("span", { class: "lr-badge", text: r.name });
    }) : h("span", { class: "lr-muted", text: t("access.admins_only") })));
    if (canEdit) {
      card.appendChild(h("div", { class: "lr-row" }, h("button", { class: "lr-btn lr-btn-sm", type: "button", text: t("access.choose"),
        onclick: function () {
          pickUsers(true).then(function (ids) {
            return api("PUT", "/access", { readers: ids });
          }).then(function () { rerender(); }, failed);
        } }),
      readers.length ? h("button", { class: "lr-btn lr-btn-link lr-btn-sm", type: "button", text: t("access.clear"),
        onclick: function () { api("PUT", "/access", { readers: [] }).then(function () { rerender(); }, failed); } }) : null));
    }
    return card;
  }

  // ---- Saving ----

  function normalise(s) {
    s.scope = s.scope || { mode: "all" };
    s.teams = s.teams || [];
    s.rules = s.rules || [];
    s.default = s.default || {};
    s.existing_client = s.existing_client || {};
    s.teams.forEach(function (team) {
      team.members = team.members || [];
      team.fallback = team.fallback || {};
    });
    s.rules.forEach(function (r) { r.conditions = r.conditions || []; r.target = r.target || {}; });
    return s;
  }

  function loadSettings() {
    return api("GET", "/settings").then(function (res) {
      state.settings = normalise(res.settings);
      state.saved = JSON.stringify(state.settings);
      state.version = res.version;
      state.errors = {};
      (res.people || []).forEach(function (p) { state.names[p.id] = p.name; });
      updateSaveBar();
    });
  }

  function save() {
    $("lr-save").disabled = true;
    api("PUT", "/settings", { settings: state.settings, base_version: state.version }).then(function (res) {
      state.version = res.version;
      state.saved = JSON.stringify(state.settings);
      state.errors = {};
      flash("ok", tf("save.done", { version: res.version }));
      rerender();
    }, function (err) {
      if (err.status === 422 && err.data.fields) {
        state.errors = err.data.fields;
        flash("bad", t("save.failed"), t("save.fix_fields"));
        showTab(tabOfFirstError());
        updateSaveBar();
        focusFirstError();
        return;
      }
      if (err.status === 409) {
        // The page keeps its changes; the next save replaces the version saved
        // meanwhile, as the message says once the page knows that version.
        api("GET", "/settings").then(function (cur) {
          state.version = cur.version;
          flash("warn", t("save.conflict"));
          updateSaveBar();
        }, failed);
        return;
      }
      failed(err);
      updateSaveBar();
    });
  }

  function tabOfFirstError() {
    var paths = Object.keys(state.errors);
    return paths.some(function (p) { return p.indexOf("teams") === 0; }) ? "teams" : "rules";
  }

  function focusFirstError() {
    var el = document.querySelector(".lr-invalid");
    if (el) {
      el.focus();
    }
  }

  // ---- Start ----

  function start() {
    document.querySelectorAll(".lr-tab").forEach(function (tab) {
      tab.addEventListener("click", function () {
        // A message belongs to the tab it was shown on, except for marked fields.
        if (Object.keys(state.errors).length === 0) {
          flash();
        }
        showTab(tab.getAttribute("data-tab"));
      });
    });
    if (canEdit) {
      $("lr-save").addEventListener("click", save);
      $("lr-discard").addEventListener("click", function () {
        state.settings = JSON.parse(state.saved);
        state.errors = {};
        rerender();
      });
    }
    // Leaving with unsaved changes asks first, so nothing typed is lost by accident.
    window.addEventListener("beforeunload", function (e) {
      if (dirty()) {
        e.preventDefault();
        e.returnValue = "";
      }
    });
    Promise.all([
      loadSettings(),
      api("GET", "/catalog").then(function (cat) {
        state.catalog = cat;
        (cat.users || []).forEach(function (u) { state.names[u.id] = u.name; });
      }, function () {
        flash("warn", t("catalog.failed"));
      })
    ]).then(function () {
      document.body.setAttribute("data-ready", "true");
      showTab(state.tab);
    }, failed);
  }

  function connect() {
    if (!window.B24Js || !window.B24Js.initializeB24Frame) {
      return Promise.resolve(null);
    }
    return window.B24Js.initializeB24Frame().then(function (frame) {
      b24 = frame;
      document.body.setAttribute("data-frame", "connected");
      b24.parent.setTitle(t("app.title")).catch(function () {});
      return frame;
    }, function () {
      document.body.setAttribute("data-frame", "none");
      return null;
    });
  }

  connect().then(start);
  window.addEventListener("resize", fit);
})();
