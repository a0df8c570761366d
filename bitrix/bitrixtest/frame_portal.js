// The portal side of the frame protocol: what a Bitrix24 page does for the
// application iframe it hosts. The application's frame SDK posts strings shaped
// "command:params:callback:appSid" (params is JSON and may be absent); the portal
// checks the sender, carries out the command and, when the command has an answer,
// posts "callback:json" back to the application's origin.
(function () {
  "use strict";

  var config = JSON.parse(document.getElementById("frame-config").textContent);
  var frame = document.getElementById("app-frame");
  var form = document.getElementById("app-form");
  var journal = [];
  var appOptions = config.appOptions || {};
  var userOptions = config.userOptions || {};

  // Every command the application sent, for tests to read.
  window.portalJournal = journal;

  function answer(callback, result) {
    var message = callback;
    if (result !== undefined) {
      message += ":" + JSON.stringify(result);
    }
    frame.contentWindow.postMessage(message, config.appOrigin);
  }

  // parse splits a message into its parts. The params may themselves contain
  // colons, so the callback and the app SID are taken from the end.
  function parse(data) {
    var parts = data.split(":");
    if (parts.length < 3) {
      return null;
    }
    var sid = parts.pop();
    var callback = parts.pop();
    var command = parts.shift();
    var raw = parts.join(":");
    var params = {};
    if (raw !== "") {
      try {
        params = JSON.parse(raw);
      } catch (e) {
        params = raw;
      }
    }
    return { command: command, params: params, callback: callback, sid: sid };
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body || {})
    }).then(function (r) {
      if (!r.ok) {
        throw new Error("portal answered " + r.status);
      }
      return r.json();
    });
  }

  var handlers = {
    getInitData: function (msg) {
      var data = Object.assign({}, config.initData);
      data.APP_OPTIONS = appOptions;
      data.USER_OPTIONS = userOptions;
      answer(msg.callback, data);
    },
    refreshAuth: function (msg) {
      post(config.refreshURL).then(function (auth) {
        config.initData.AUTH_ID = auth.AUTH_ID;
        config.initData.REFRESH_ID = auth.REFRESH_ID;
        config.initData.AUTH_EXPIRES = auth.AUTH_EXPIRES;
        answer(msg.callback, auth);
      });
    },
    resizeWindow: function (msg) {
      var p = msg.params || {};
      frame.style.width = typeof p.width === "number" ? p.width + "px" : String(p.width || "100%");
      frame.style.height = parseInt(p.height, 10) + "px";
      answer(msg.callback, {});
    },
    setTitle: function (msg) {
      var title = String((msg.params || {}).title || "");
      document.title = title;
      document.getElementById("portal-title").textContent = title;
      answer(msg.callback, {});
    },
    setScroll: function (msg) {
      window.scrollTo(0, parseInt((msg.params || {}).scroll, 10) || 0);
      answer(msg.callback, {});
    },
    reloadWindow: function () {
      form.submit();
    },
    setInstall: function (msg) {
      answer(msg.callback, {});
    },
    setInstallFinish: function (msg) {
      // The portal marks the application installed, which fires ONAPPINSTALL,
      // and opens the application's main page in place of the installer.
      post(config.finishURL).then(function () {
        answer(msg.callback, {});
        window.location.reload();
      }, function (err) {
        document.getElementById("portal-status").textContent = String(err);
      });
    },
    setAppOption: function (msg) {
      var p = msg.params || {};
      if (!config.initData.IS_ADMIN) {
        return;
      }
      appOptions[p.name] = p.value;
      answer(msg.callback, {});
    },
    setUserOption: function (msg) {
      var p = msg.params || {};
      userOptions[p.name] = p.value;
      answer(msg.callback, {});
    },
    selectUser: function (msg) {
      var multiple = !!(msg.params || {}).mult;
      pickUsers(multiple, function (picked) {
        answer(msg.callback, multiple ? picked : picked[0]);
      });
    },
    selectAccess: function (msg) {
      pickUsers(true, function (picked) {
        answer(msg.callback, picked.map(function (u) {
          return { id: "U" + u.id, name: u.name };
        }));
      });
    },
    selectCRM: function (msg) {
      pickLeads(msg.params || {}, function (picked) {
        answer(msg.callback, { lead: picked });
      });
    },
    openApplication: function (msg) {
      answer(msg.callback, {});
    },
    openPath: function (msg) {
      answer(msg.callback, { result: "close" });
    },
    closeApplication: function (msg) {
      answer(msg.callback, {});
    },
    getInterface: function (msg) {
      answer(msg.callback, { command: [], event: [] });
    },
    placementBindEvent: function (msg) {
      answer(msg.callback, {});
    }
  };

  window.addEventListener("message", function (event) {
    // Only the hosted application, from its own origin, may command the portal.
    if (event.source !== frame.contentWindow || event.origin !== config.appOrigin) {
      return;
    }
    if (typeof event.data !== "string") {
      return;
    }
    var msg = parse(event.data);
    if (!msg || msg.sid !== config.appSid) {
      return;
    }
    journal.push({ command: msg.command, params: msg.params });
    var handle = handlers[msg.command];
    if (handle) {
      handle(msg);
    }
  });

  // ---- The portal's own pickers ----

  var picker = document.getElementById("portal-picker");
  var pickerList = document.getElementById("portal-picker-list");
  var pickerTitle = document.getElementById("portal-picker-title");
  var pickerDone = document.getElementById("portal-picker-done");
  var pickerCancel = document.getElementById("portal-picker-cancel");

  function openPicker(title, items, multiple, done) {
    pickerTitle.textContent = title;
    pickerList.textContent = "";
    var chosen = {};
    items.forEach(function (item) {
      var row = document.createElement("label");
      row.className = "portal-picker-item";
      row.setAttribute("data-id", item.id);
      var box = document.createElement("input");
      box.type = multiple ? "checkbox" : "radio";
      box.name = "portal-pick";
      box.value = item.id;
      box.addEventListener("change", function () {
        if (!multiple) {
          chosen = {};
        }
        if (box.checked) {
          chosen[item.id] = item;
        } else {
          delete chosen[item.id];
        }
      });
      var text = document.createElement("span");
      text.textContent = item.label;
      row.appendChild(box);
      row.appendChild(text);
      pickerList.appendChild(row);
    });
    picker.hidden = false;
    pickerDone.onclick = function () {
      picker.hidden = true;
      var picked = items.filter(function (i) { return chosen[i.id]; }).map(function (i) { return i.value; });
      if (picked.length > 0) {
        done(picked);
      }
    };
    pickerCancel.onclick = function () {
      picker.hidden = true;
    };
  }

  function pickUsers(multiple, done) {
    var items = config.users.map(function (u) {
      return {
        id: String(u.id),
        label: u.name,
        value: {
          id: String(u.id), name: u.name, photo: "", position: u.position || "",
          url: "/company/personal/user/" + u.id + "/", sub: false, sup: false
        }
      };
    });
    openPicker(config.texts.pickUsers, items, multiple, done);
  }

  function pickLeads(params, done) {
    var items = config.leads.map(function (l) {
      return {
        id: "L_" + l.id,
        label: l.title,
        value: {
          id: "L_" + l.id, type: "lead", place: "lead", title: l.title, desc: "",
          url: "/crm/lead/details/" + l.id + "/"
        }
      };
    });
    openPicker(config.texts.pickLeads, items, !!params.multiple, done);
  }

  form.submit();
})();
