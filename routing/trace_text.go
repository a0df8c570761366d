package routing

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// phrases are the words of one language the trace is written in.
type phrases struct {
	assigned, held, heldTarget, notRouted           string
	inTeam, rule, noRule, fallback, toTeam, skipped string
	how                                             map[string]string
	reasons                                         map[string]string
	notRoutedReasons                                map[string]string
	months                                          [12]string
	ordinals                                        []string
	nextInTurn, nthInTurn, neverHadLead, lastLead   string
	passed, passedLate                              string
}

var english = phrases{
	assigned:   "Assigned to %s: %s",
	held:       "Held until somebody is available",
	heldTarget: "Held as the settings ask",
	notRouted:  "Not routed: %s",
	inTeam:     " in team “%s”",
	rule:       "rule “%s”",
	noRule:     "no rule matched, the default applied",
	fallback:   "nobody available in team “%s”, passed on",
	toTeam:     " to team “%s”",
	skipped:    "skipped: ",
	passed:     "not taken up within %s minutes, passed on in team “%s”",
	passedLate: "not taken up in time, passed on in team “%s”",
	how: map[string]string{
		Weighted:         "by weighted share",
		Random:           "drawn at random",
		LeastLoaded:      "fewest open leads (%s)",
		FirstAvailable:   "first available, number %s in priority order",
		"existing_owner": "owner of the existing client",
		"fixed_person":   "named in the settings",
	},
	reasons: map[string]string{
		SkipUnknown:    "not found among the portal's users",
		SkipInactive:   "dismissed or deactivated",
		SkipAbsent:     "absent until %s",
		SkipClockedOut: "has not started the working day",
		SkipOnBreak:    "on a break",
		SkipOffHours:   "outside working hours",
		SkipPaused:     "paused",
		SkipDailyCap:   "at %s of %s leads today",
		SkipOpenCap:    "at %s of %s open leads",

		SkipMissedDeadline: "missed the response deadline",
	},
	notRoutedReasons: map[string]string{
		NotConfigured: "routing is not set up yet",
		NotInSources:  "source “%s” is not among the routed sources",
		NotAssignedTo: "it arrived assigned to %s, whose leads are not routed",
		NotManualKept: "%s was chosen as responsible by hand",
		NotPassedOn: "its response deadline passed, but nobody else in team “%s” can " +
			"take it, so it stays with its owner",
	},
	months: [12]string{"January", "February", "March", "April", "May", "June", "July",
		"August", "September", "October", "November", "December"},
	ordinals:     []string{"", "first", "second", "third", "fourth", "fifth", "sixth"},
	nextInTurn:   "next in turn",
	nthInTurn:    "%s in turn",
	neverHadLead: "waiting longest (no leads yet)",
	lastLead:     "waiting longest (last lead %s)",
}

var russian = phrases{
	assigned:   "Ответственный: %s — %s",
	held:       "Лид ждёт, пока кто-нибудь освободится",
	heldTarget: "Лид ждёт по настройкам",
	notRouted:  "Не распределяется: %s",
	inTeam:     " в команде «%s»",
	rule:       "правило «%s»",
	noRule:     "ни одно правило не подошло, действует вариант по умолчанию",
	fallback:   "в команде «%s» нет доступных, передано дальше",
	toTeam:     " в команду «%s»",
	skipped:    "пропущены: ",
	passed:     "не взят в работу за %s мин., передан дальше в команде «%s»",
	passedLate: "не взят в работу вовремя, передан дальше в команде «%s»",
	how: map[string]string{
		Weighted:         "по весам",
		Random:           "случайный выбор",
		LeastLoaded:      "меньше всего открытых лидов (%s)",
		FirstAvailable:   "первый доступный, № %s по приоритету",
		"existing_owner": "ответственный за существующего клиента",
		"fixed_person":   "указан в настройках",
	},
	reasons: map[string]string{
		SkipUnknown:    "нет среди пользователей портала",
		SkipInactive:   "уволен или деактивирован",
		SkipAbsent:     "отсутствует до %s",
		SkipClockedOut: "рабочий день не начат",
		SkipOnBreak:    "перерыв",
		SkipOffHours:   "нерабочее время",
		SkipPaused:     "на паузе",
		SkipDailyCap:   "%s из %s лидов за сегодня",
		SkipOpenCap:    "%s из %s открытых лидов",

		SkipMissedDeadline: "не взял лид в работу вовремя",
	},
	notRoutedReasons: map[string]string{
		NotConfigured: "распределение ещё не настроено",
		NotInSources:  "источник «%s» не входит в распределяемые",
		NotAssignedTo: "лид пришёл на %s, чьи лиды не распределяются",
		NotManualKept: "ответственного %s выбрали вручную",
		NotPassedOn: "срок реакции истёк, но в команде «%s» больше некому " +
			"его передать, лид остаётся у ответственного",
	},
	months: [12]string{"января", "февраля", "марта", "апреля", "мая", "июня", "июля",
		"августа", "сентября", "октября", "ноября", "декабря"},
	nextInTurn:   "по очереди",
	nthInTurn:    "по очереди, № %s",
	neverHadLead: "дольше всех без лидов (лидов ещё не было)",
	lastLead:     "дольше всех без лидов (последний — %s)",
}

// Text renders the trace as one line for people, in Russian for "ru" and in English
// for any other language.
func (t Trace) Text(lang string) string {
	ph := &english
	if strings.HasPrefix(strings.ToLower(lang), "ru") {
		ph = &russian
	}
	var parts, skips []string
	for _, e := range t.Entries {
		switch e.Code {
		case CodeSkipped:
			skips = append(skips, e.Params["name"]+" — "+ph.reason(e.Params))
		default:
			if s := ph.entry(e); s != "" {
				parts = append(parts, s)
			}
		}
	}
	if len(skips) > 0 {
		parts = append(parts, ph.skipped+strings.Join(skips, ", "))
	}
	return strings.Join(parts, "; ") + "."
}

func (ph *phrases) entry(e TraceEntry) string {
	p := e.Params
	switch e.Code {
	case CodeAssigned:
		how := ph.howText(p)
		if p["team_name"] != "" {
			how += fmt.Sprintf(ph.inTeam, p["team_name"])
		}
		return fmt.Sprintf(ph.assigned, p["name"], how)
	case CodeHeld:
		if p["reason"] == HoldTarget {
			return ph.heldTarget
		}
		return ph.held
	case CodeNotRouted:
		return fmt.Sprintf(ph.notRouted, ph.notRoutedText(p))
	case CodeRule:
		return fmt.Sprintf(ph.rule, p["rule_name"])
	case CodeNoRule:
		return ph.noRule
	case CodePassed:
		if p["minutes"] == "" {
			return fmt.Sprintf(ph.passedLate, p["team_name"])
		}
		return fmt.Sprintf(ph.passed, p["minutes"], p["team_name"])
	case CodeFallback:
		s := fmt.Sprintf(ph.fallback, p["team_name"])
		if p["to"] != "" {
			s += fmt.Sprintf(ph.toTeam, p["to_name"])
		} else if p["to_name"] != "" {
			s += " → " + p["to_name"]
		}
		return s
	}
	return ""
}

func (ph *phrases) howText(p map[string]string) string {
	switch p["how"] {
	case RoundRobin:
		pos, _ := strconv.Atoi(p["pos"])
		if pos <= 1 {
			return ph.nextInTurn
		}
		n := p["pos"]
		if pos < len(ph.ordinals) {
			n = ph.ordinals[pos]
		}
		return fmt.Sprintf(ph.nthInTurn, n)
	case LongestWaiting:
		since, err := time.Parse(time.RFC3339, p["since"])
		if err != nil {
			return ph.neverHadLead
		}
		return fmt.Sprintf(ph.lastLead, ph.date(since)+since.Format(" 15:04"))
	case LeastLoaded:
		return fmt.Sprintf(ph.how[LeastLoaded], p["open"])
	case FirstAvailable:
		return fmt.Sprintf(ph.how[FirstAvailable], p["pos"])
	}
	if s, ok := ph.how[p["how"]]; ok {
		return s
	}
	return p["how"]
}

func (ph *phrases) reason(p map[string]string) string {
	format, ok := ph.reasons[p["reason"]]
	if !ok {
		return p["reason"]
	}
	switch p["reason"] {
	case SkipAbsent:
		until, err := time.Parse(time.RFC3339, p["until"])
		if err != nil {
			return fmt.Sprintf(format, "?")
		}
		return fmt.Sprintf(format, ph.date(until))
	case SkipDailyCap, SkipOpenCap:
		return fmt.Sprintf(format, p["n"], p["cap"])
	}
	return format
}

func (ph *phrases) notRoutedText(p map[string]string) string {
	format, ok := ph.notRoutedReasons[p["reason"]]
	if !ok {
		return p["reason"]
	}
	switch p["reason"] {
	case NotInSources:
		return fmt.Sprintf(format, p["source"])
	case NotAssignedTo, NotManualKept:
		return fmt.Sprintf(format, p["name"])
	case NotPassedOn:
		return fmt.Sprintf(format, p["team_name"])
	}
	return format
}

// date writes "12 December" / "12 декабря".
func (ph *phrases) date(t time.Time) string {
	return strconv.Itoa(t.Day()) + " " + ph.months[t.Month()-1]
}
