package bitrixtest

import "strings"

// methods is every REST method the fake portal knows, by lower-case name.
var methods map[string]methodSpec

func init() {
	methods = map[string]methodSpec{
		"app.info":                 {"", appInfo},
		"app.option.get":           {"", appOptionGet},
		"app.option.set":           {"", appOptionSet},
		"profile":                  {"", profile},
		"user.admin":               {"", userAdmin},
		"user.current":             {"user", userCurrent},
		"user.get":                 {"user", userGet},
		"department.get":           {"department", departmentGet},
		"im.user.list.get":         {"im", imUserListGet},
		"im.notify.system.add":     {"im", imNotify},
		"im.notify.personal.add":   {"im", imNotify},
		"timeman.status":           {"timeman", timemanStatus},
		"crm.status.list":          {"crm", crmStatusList},
		"crm.duplicate.findbycomm": {"crm", crmDuplicateFindByComm},
		"crm.timeline.comment.add": {"crm", crmTimelineCommentAdd},
		"event.bind":               {"", eventBind},
		"event.unbind":             {"", eventUnbind},
		"event.get":                {"", eventGet},
		"event.test":               {"", eventTest},
		"events":                   {"", eventsList},
		"event.offline.get":        {"", eventOfflineGet},
		"event.offline.clear":      {"", eventOfflineClear},
		"event.offline.error":      {"", eventOfflineError},
		"event.offline.list":       {"", eventOfflineList},
		"placement.bind":           {"placement", placementBind},
		"placement.unbind":         {"placement", placementUnbind},
		"placement.get":            {"placement", placementGet},
		"placement.list":           {"placement", placementList},
		"scope":                    {"", scopeMethod},
	}
	crmMethods("crm.lead", leadKind, methods)
	crmMethods("crm.contact", contactKind, methods)
	crmMethods("crm.company", companyKind, methods)
}

func scopeMethod(c *call) (outcome, *restError) {
	var out []any
	for _, s := range strings.Split(c.p.appScope(), ",") {
		out = append(out, strings.TrimSpace(s))
	}
	return outcome{result: out}, nil
}
