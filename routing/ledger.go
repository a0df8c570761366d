package routing

import (
	"fmt"
	"strconv"
	"strings"
)

// ledger is the rotation state of one portal as the fields of its Redis hash
// (keyspace.RoutingLedger). The decision script keeps it in Redis; the simulation
// keeps a copy in memory and runs decide on it. decide is the Go twin of the script:
// the same steps in the same order, so that both give the same answers for the same
// plans (the tests hold them to it).
type ledger map[string]string

// record is one person's entry in the ledger, shared by all teams and sources.
type record struct {
	Credit int64 // weighted rotation credit, in weight units
	Last   int64 // Unix milliseconds of the last lead given by turn
	Day    int64 // YYYYMMDD the Count belongs to
	Count  int64 // leads received that day
	Open   int64 // open leads held
}

func parseRecord(v string) record {
	var r record
	parts := strings.Split(v, ":")
	if len(parts) != 5 {
		return r
	}
	var nums [5]int64
	for i, p := range parts {
		n, err := strconv.ParseInt(p, 10, 64)
		if err != nil {
			return record{}
		}
		nums[i] = n
	}
	return record{nums[0], nums[1], nums[2], nums[3], nums[4]}
}

// String formats the record as the ledger stores it.
func (r record) String() string {
	return fmt.Sprintf("%d:%d:%d:%d:%d", r.Credit, r.Last, r.Day, r.Count, r.Open)
}

// decide runs the plan against the ledger, updating it when somebody is assigned.
func (l ledger) decide(p *plan) result {
	res := result{Outcome: "held", Rule: p.Rule, Ver: p.Ver, Pass: p.Pass}
	for si := range p.Steps {
		st := &p.Steps[si]
		res.Path = append(res.Path, hop{Kind: st.Kind, Team: st.Team})
		recs := make([]record, len(st.Members))
		var eligible []int
		for i, m := range st.Members {
			recs[i] = parseRecord(l[personField(m.ID)])
			if m.Skip != "" {
				res.Skips = append(res.Skips, skip{Step: si, ID: m.ID, Code: m.Skip, Arg: m.Arg})
				continue
			}
			count := recs[i].Count
			if recs[i].Day != int64(m.Day) {
				count = 0
			}
			if m.DC > 0 && count >= int64(m.DC) {
				res.Skips = append(res.Skips, skip{Step: si, ID: m.ID, Code: SkipDailyCap,
					N: int(count), Cap: m.DC})
				continue
			}
			if m.OC > 0 && recs[i].Open >= int64(m.OC) {
				res.Skips = append(res.Skips, skip{Step: si, ID: m.ID, Code: SkipOpenCap,
					N: int(recs[i].Open), Cap: m.OC})
				continue
			}
			eligible = append(eligible, i)
		}
		if len(eligible) == 0 {
			continue
		}
		chosen, how, pos := l.pick(st, recs, eligible)
		m, r := st.Members[chosen], recs[chosen]
		res.Outcome, res.User, res.Step, res.How, res.Pos = "assigned", m.ID, si, how, pos
		res.Open, res.Since = int(r.Open), r.Last
		if r.Day != int64(m.Day) {
			r.Day, r.Count = int64(m.Day), 0
		}
		r.Count++
		r.Open++
		if st.Kind == stepTeam {
			r.Last = p.Now
		}
		recs[chosen] = r
		if st.Strategy == Weighted {
			l.credit(st, recs, eligible, chosen)
		}
		l[personField(m.ID)] = recs[chosen].String()
		return res
	}
	res.Hold = p.Hold
	return res
}

// pick chooses among the eligible members of a step by its strategy; it returns the
// member's index, how it was chosen and a position for the trace.
func (l ledger) pick(st *step, recs []record, eligible []int) (int, string, int) {
	switch {
	case st.Kind == stepOwner:
		return eligible[0], "existing_owner", 0
	case st.Kind == stepPerson:
		return eligible[0], "fixed_person", 0
	}
	switch st.Strategy {
	case RoundRobin:
		return l.roundRobin(st, eligible)
	case Weighted:
		return weightedPick(st, recs, eligible), Weighted, 0
	case Random:
		return randomPick(st, eligible), Random, 0
	case LeastLoaded:
		return l.leastLoaded(st, recs, eligible), LeastLoaded, 0
	case LongestWaiting:
		best := eligible[0]
		for _, i := range eligible[1:] {
			if recs[i].Last < recs[best].Last {
				best = i
			}
		}
		return best, LongestWaiting, 0
	}
	return eligible[0], FirstAvailable, eligible[0] + 1
}

// roundRobin takes the first eligible member after the one who had the last turn.
// The pointer keeps the user and their index, so removing that user continues the
// rotation from the same place.
func (l ledger) roundRobin(st *step, eligible []int) (int, string, int) {
	n := len(st.Members)
	start := 0
	if v, ok := l["rr"+st.Team]; ok {
		uid, idx, _ := strings.Cut(v, ":")
		start, _ = strconv.Atoi(idx)
		for i, m := range st.Members {
			if strconv.FormatInt(m.ID, 10) == uid {
				start = i + 1
				break
			}
		}
	}
	ok := make(map[int]bool, len(eligible))
	for _, i := range eligible {
		ok[i] = true
	}
	for k := range n {
		i := (start + k) % n
		if ok[i] {
			l["rr"+st.Team] = strconv.FormatInt(st.Members[i].ID, 10) + ":" + strconv.Itoa(i)
			return i, RoundRobin, k + 1
		}
	}
	return eligible[0], RoundRobin, 1
}

// clampCredit bounds a credit to [-total, total], so that a person whose credit
// was earned under other weights or teams catches up by at most about one lead.
func clampCredit(c, total int64) int64 {
	return max(-total, min(total, c))
}

// weightedPick adds every eligible member's weight to their credit and picks, among
// those with a positive credit, the one whose next lead is due soonest
// ((total + w - credit) / w smallest, earlier in the list on a tie). This keeps every
// member's count within one lead of its ideal share at every prefix.
func weightedPick(st *step, recs []record, eligible []int) int {
	var total int64
	for _, i := range eligible {
		total += int64(st.Members[i].W)
	}
	best := -1
	var bestNum, bestW int64
	for pass := 0; pass < 2 && best < 0; pass++ {
		for _, i := range eligible {
			w := int64(st.Members[i].W)
			c := clampCredit(recs[i].Credit, total) + w
			if pass == 0 && c <= 0 {
				continue
			}
			num := total + w - c
			if best < 0 || num*bestW < bestNum*w {
				best, bestNum, bestW = i, num, w
			}
		}
	}
	return best
}

// credit moves the weighted credits after a pick: every eligible member earns their
// weight, the chosen one pays the total.
func (l ledger) credit(st *step, recs []record, eligible []int, chosen int) {
	var total int64
	for _, i := range eligible {
		total += int64(st.Members[i].W)
	}
	for _, i := range eligible {
		r := &recs[i]
		r.Credit = clampCredit(r.Credit, total) + int64(st.Members[i].W)
		if i == chosen {
			r.Credit -= total
		}
		l[personField(st.Members[i].ID)] = r.String()
	}
}

// randomPick picks in proportion to the weights with the step's random number.
func randomPick(st *step, eligible []int) int {
	var total int64
	for _, i := range eligible {
		total += int64(st.Members[i].W)
	}
	target := st.R * float64(total)
	var sum int64
	for _, i := range eligible {
		sum += int64(st.Members[i].W)
		if target < float64(sum) {
			return i
		}
	}
	return eligible[len(eligible)-1]
}

// leastLoaded picks the member with the fewest open leads (then the longest waiting,
// then the earliest in the list), but passes over a person who already took
// MaxStreak leads in a row while others are eligible: a returner with no open leads
// catches up at a bounded rate instead of taking every lead.
func (l ledger) leastLoaded(st *step, recs []record, eligible []int) int {
	streakUser, streak := int64(0), 0
	if v, ok := l["st"+st.Team]; ok {
		u, n, _ := strings.Cut(v, ":")
		streakUser, _ = strconv.ParseInt(u, 10, 64)
		streak, _ = strconv.Atoi(n)
	}
	best := -1
	for _, i := range eligible {
		if len(eligible) > 1 && streak >= st.MaxStreak && st.Members[i].ID == streakUser {
			continue
		}
		if best < 0 || recs[i].Open < recs[best].Open ||
			recs[i].Open == recs[best].Open && recs[i].Last < recs[best].Last {
			best = i
		}
	}
	if st.Members[best].ID == streakUser {
		streak++
	} else {
		streak = 1
	}
	l["st"+st.Team] = strconv.FormatInt(st.Members[best].ID, 10) + ":" + strconv.Itoa(streak)
	return best
}
