package routing

import (
	"strconv"
	"sync"
	"time"
)

// Reasons a candidate is skipped. The first group is checked in Go from the
// Directory; the caps are checked atomically by the decision script.
const (
	SkipUnknown    = "unknown"     // not in the directory the pipeline passed
	SkipInactive   = "inactive"    // dismissed or deactivated in Bitrix24
	SkipAbsent     = "absent"      // on the absence chart; param until
	SkipClockedOut = "clocked_out" // working day not open (team requires clock-in)
	SkipOnBreak    = "on_break"    // working day paused and breaks do not count
	SkipOffHours   = "off_hours"   // outside their working schedule
	SkipPaused     = "paused"      // paused in the team settings
	SkipDailyCap   = "daily_cap"   // reached the daily limit; params n, cap
	SkipOpenCap    = "open_cap"    // reached the open-lead limit; params n, cap
	// SkipMissedDeadline: the person let the lead's response deadline pass
	// (Lead.Exclude).
	SkipMissedDeadline = "missed_deadline"
)

// Timeman statuses of a person's working day in Bitrix24.
const (
	TimemanOpened = "OPENED"
	TimemanPaused = "PAUSED"
	TimemanClosed = "CLOSED"
)

// locations caches loaded time zones; LoadLocation reads the zone database.
var locations sync.Map

// location returns the time zone by IANA name, or UTC when it is empty or unknown.
func location(name string) *time.Location {
	if name == "" {
		return time.UTC
	}
	if loc, ok := locations.Load(name); ok {
		return loc.(*time.Location)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		loc = time.UTC
	}
	locations.Store(name, loc)
	return loc
}

// candidate is one person considered for a lead, with what Go found out about them.
type candidate struct {
	UserID int64
	Skip   string // one of the Skip… reasons found from the directory, or ""
	Arg    string // the reason's parameter (absent: Unix time of the return)
	Day    int    // the current day in the person's time zone, YYYYMMDD
}

// check evaluates everything but the caps for one person. m and t may be nil for a
// person outside any team (a fixed target or an existing client's owner).
func check(p Person, known bool, m *Member, t *Team, now time.Time) candidate {
	c := candidate{UserID: p.ID}
	var sched *Schedule
	if m != nil {
		sched = m.effectiveSchedule(t)
	}
	zone := p.TimeZone
	if sched != nil && sched.TimeZone != "" {
		zone = sched.TimeZone
	}
	local := now.In(location(zone))
	c.Day = local.Year()*10000 + int(local.Month())*100 + local.Day()
	switch {
	case !known:
		c.Skip = SkipUnknown
	case !p.Active:
		c.Skip = SkipInactive
	case p.AbsentUntil.After(now):
		c.Skip, c.Arg = SkipAbsent, strconv.FormatInt(p.AbsentUntil.Unix(), 10)
	case m != nil && m.Paused:
		c.Skip = SkipPaused
	case t != nil && t.RequireClockIn && p.Timeman == TimemanPaused && !t.BreakCounts:
		c.Skip = SkipOnBreak
	case t != nil && t.RequireClockIn && p.Timeman != TimemanOpened && p.Timeman != TimemanPaused:
		c.Skip = SkipClockedOut
	case sched != nil && !sched.contains(local):
		c.Skip = SkipOffHours
	}
	return c
}

// contains reports whether the local time falls inside the schedule. A shift that
// ends before it starts runs past midnight and belongs to the day it starts.
func (s *Schedule) contains(local time.Time) bool {
	from, err1 := parseClock(s.From)
	to, err2 := parseClock(s.To)
	if err1 != nil || err2 != nil {
		return false
	}
	minute := local.Hour()*60 + local.Minute()
	today := isoWeekday(local)
	if from < to {
		return s.hasDay(today) && minute >= from && minute < to
	}
	yesterday := today - 1
	if yesterday == 0 {
		yesterday = 7
	}
	return s.hasDay(today) && minute >= from || s.hasDay(yesterday) && minute < to
}

func (s *Schedule) hasDay(d int) bool {
	for _, x := range s.Days {
		if x == d {
			return true
		}
	}
	return false
}

// isoWeekday returns 1 for Monday … 7 for Sunday.
func isoWeekday(t time.Time) int {
	d := int(t.Weekday())
	if d == 0 {
		return 7
	}
	return d
}
