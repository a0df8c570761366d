package intake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/leadrouter/leadrouter/bitrix"
	"github.com/leadrouter/leadrouter/keyspace"
	"github.com/leadrouter/leadrouter/queue"
)

// Originator is the ORIGINATOR_ID of every lead intake creates; ORIGIN_ID is the
// intake ID. A retry after a lost answer finds the lead by them, and the pipeline
// can tell an intake lead by it.
const Originator = queue.IntakeOriginator

// job is one leased post on its way to becoming a lead.
type job struct {
	entryID, intakeID string
	key               string // the post's record
	src               *Source
	decision          Decision
	fields            map[string]any // crm.lead.add fields, owner included
	mayExist          bool           // an earlier attempt may have added the lead
	leadID            int64
	err               error
}

// prepare reads the post and decides its owner (once).
func (s *Service) prepare(ctx context.Context, memberID string, j *job) error {
	rec, err := s.rdb.HGetAll(ctx, j.key).Result()
	if err != nil {
		return fmt.Errorf("read intake post: %w", err)
	}
	var lead Lead
	if err := json.Unmarshal([]byte(rec["lead"]), &lead); err != nil {
		return permanent{fmt.Errorf("decode intake lead: %w", err)}
	}
	j.src = &Source{ID: rec["source"], Name: rec["source_name"],
		Options: Options{CRMSource: rec["crm_source"]}}
	client := s.clients(memberID)
	j.decision, err = s.decision(ctx, memberID, j.intakeID, rec, &lead, j.src, client)
	if err != nil {
		return err
	}
	j.fields = lead.Fields(j.src, j.decision.Owner)
	j.mayExist = rec["adding"] != ""
	return nil
}

// complete records the decision for the created lead and marks the post created.
func (s *Service) complete(ctx context.Context, memberID string, j *job) error {
	if err := s.router.Created(ctx, memberID, j.leadID, j.decision); err != nil {
		return fmt.Errorf("record decision for lead %d: %w", j.leadID, err)
	}
	if err := s.finish(ctx, j.key, j.leadID, j.decision.Owner); err != nil {
		return err
	}
	postsCreated.Inc()
	s.log.Info("intake lead created", "member_id", memberID, "intake_id", j.intakeID,
		"source_id", j.src.ID, "lead_id", j.leadID, "owner", j.decision.Owner,
		"rule", j.decision.Rule)
	return nil
}

// decision returns the owner of the post's lead: the one decided in an earlier
// attempt, the post's own choice when that user is active, or routing's.
func (s *Service) decision(ctx context.Context, memberID, intakeID string, rec map[string]string,
	lead *Lead, src *Source, client Caller) (Decision, error) {
	key := keyspace.IntakeRecord(memberID, intakeID)
	var d Decision
	if raw := rec["decision"]; raw != "" {
		if err := json.Unmarshal([]byte(raw), &d); err != nil {
			return d, permanent{fmt.Errorf("decode intake decision: %w", err)}
		}
		return d, nil
	}
	if lead.Responsible > 0 {
		active, err := activeUser(ctx, client, lead.Responsible)
		if err != nil {
			return d, fmt.Errorf("check responsible user: %w", err)
		}
		if active {
			d = Decision{Owner: lead.Responsible, Rule: "responsible",
				Reason: "the intake post named the responsible person"}
		} else {
			overridesRefused.Inc()
			s.rdb.HSet(ctx, key, "problem", "the responsible person asked for is not "+
				"an active user of the portal; routing rules chose the owner")
		}
	}
	if d.Rule == "" {
		var err error
		d, err = s.router.Route(ctx, memberID, candidate(intakeID, lead, src))
		if err != nil {
			return d, fmt.Errorf("route intake lead: %w", err)
		}
	}
	raw, err := json.Marshal(d)
	if err != nil {
		return d, fmt.Errorf("encode intake decision: %w", err)
	}
	if err := s.rdb.HSet(ctx, key, "decision", raw).Err(); err != nil {
		return d, fmt.Errorf("save intake decision: %w", err)
	}
	return d, nil
}

// candidate is the lead as routing sees it.
func candidate(intakeID string, lead *Lead, src *Source) Candidate {
	c := Candidate{IntakeID: intakeID, SourceID: src.ID, Fields: map[string]string{}}
	for k, v := range lead.Fields(src, 0) {
		switch v := v.(type) {
		case string:
			c.Fields[k] = v
		case []string:
			c.Fields[k] = strings.Join(v, ", ")
		}
	}
	c.Fields["INTAKE_SOURCE"] = src.ID
	for _, p := range lead.Phones {
		c.Phones = append(c.Phones, p.Value)
	}
	for _, e := range lead.Emails {
		c.Emails = append(c.Emails, e.Value)
	}
	return c
}

// activeUser reports whether id is an active user of the portal.
func activeUser(ctx context.Context, client Caller, id int64) (bool, error) {
	var users []struct {
		ID     bitrix.ID   `json:"ID"`
		Active bitrix.Bool `json:"ACTIVE"`
	}
	params := map[string]any{"FILTER": map[string]any{"ID": id}}
	if err := client.Call(ctx, "user.get", params, &users); err != nil {
		return false, err
	}
	for _, u := range users {
		if int64(u.ID) == id {
			return bool(u.Active), nil
		}
	}
	return false, nil
}

// leadsPerBatch is how many leads one REST batch adds: two commands each (the lead
// and its timeline comment), within the batch's 50.
const leadsPerBatch = 25

// addLeads creates the leads of the prepared jobs that have none yet, each with the
// decision's reason on its timeline, leadsPerBatch to a REST batch. Each job gets
// its lead ID or its error.
func (s *Service) addLeads(ctx context.Context, memberID string, jobs []*job) {
	var todo []*job
	for _, j := range jobs {
		if j.err == nil && j.leadID == 0 {
			todo = append(todo, j)
		}
	}
	client := s.clients(memberID)
	for start := 0; start < len(todo); start += leadsPerBatch {
		chunk := todo[start:min(start+leadsPerBatch, len(todo))]
		if err := s.markAdding(ctx, chunk); err != nil {
			fail(chunk, err)
			continue
		}
		res, err := client.Batch(ctx, addCommands(chunk), false)
		if err != nil {
			if refusedBeforeRunning(err) {
				s.unmarkAdding(ctx, chunk)
			}
			fail(chunk, fmt.Errorf("add intake leads: %w", err))
			continue
		}
		for i, j := range chunk {
			j.leadID, j.err = addedLead(res, i)
			if err := res.Err("n" + strconv.Itoa(i)); j.err == nil && err != nil {
				s.log.Warn("write intake lead reason", "member_id", memberID,
					"lead_id", j.leadID, "error", err)
			}
		}
	}
}

// markAdding notes on each post, before its lead is added, that the lead may exist
// from now on.
func (s *Service) markAdding(ctx context.Context, jobs []*job) error {
	p := s.rdb.Pipeline()
	for _, j := range jobs {
		p.HSet(ctx, j.key, "adding", 1)
	}
	if _, err := p.Exec(ctx); err != nil {
		return fmt.Errorf("mark intake leads adding: %w", err)
	}
	return nil
}

// unmarkAdding takes the marks of markAdding back after the portal refused the
// batch before running it, so that the next attempt need not look the leads up.
func (s *Service) unmarkAdding(ctx context.Context, jobs []*job) {
	p := s.rdb.Pipeline()
	for _, j := range jobs {
		p.HDel(ctx, j.key, "adding")
	}
	p.Exec(ctx) // a mark left behind costs one look-up later
}

// refusedBeforeRunning reports whether the portal refused a request without
// running it: its rate limit, or a method blocked by its time limit.
func refusedBeforeRunning(err error) bool {
	return errors.Is(err, bitrix.ErrQueryLimit) || errors.Is(err, bitrix.ErrOperationLimit)
}

// addCommands are a chunk's crm.lead.add ("a<i>") and timeline ("n<i>") commands.
func addCommands(chunk []*job) []bitrix.Command {
	cmds := make([]bitrix.Command, 0, 2*len(chunk))
	for i, j := range chunk {
		n := strconv.Itoa(i)
		j.fields["ORIGINATOR_ID"] = Originator
		j.fields["ORIGIN_ID"] = j.intakeID
		cmds = append(cmds, bitrix.Command{ID: "a" + n, Method: "crm.lead.add",
			Params: map[string]any{"fields": j.fields,
				"params": map[string]any{"REGISTER_SONET_EVENT": "Y"}}})
		if j.decision.Reason != "" {
			cmds = append(cmds, bitrix.Command{ID: "n" + n, Method: "crm.timeline.comment.add",
				Params: map[string]any{"fields": map[string]any{
					"ENTITY_ID": "$result[a" + n + "]", "ENTITY_TYPE": "lead",
					"COMMENT": "LeadRouter: " + j.decision.Reason}}})
		}
	}
	return cmds
}

// addedLead reads the ID of the lead command "a<i>" added.
func addedLead(res *bitrix.BatchResult, i int) (int64, error) {
	cmd := "a" + strconv.Itoa(i)
	if err := res.Err(cmd); err != nil {
		return 0, fmt.Errorf("add intake lead: %w", err)
	}
	var id bitrix.ID
	if err := res.Decode(cmd, &id); err != nil || id <= 0 {
		return 0, fmt.Errorf("add intake lead: answer without an ID: %v", err)
	}
	return int64(id), nil
}

func fail(jobs []*job, err error) {
	for _, j := range jobs {
		j.err = err
	}
}

// findLeads looks up, with one crm.lead.list by ORIGIN_ID, the leads of the
// prepared jobs whose earlier attempt may have created them already (the answer
// was lost). A job whose lead is found gets its ID.
func (s *Service) findLeads(ctx context.Context, memberID string, jobs []*job) {
	byIntake := map[string]*job{}
	var ids []string
	for _, j := range jobs {
		if j.err == nil && j.mayExist {
			byIntake[j.intakeID] = j
			ids = append(ids, j.intakeID)
		}
	}
	if len(ids) == 0 {
		return
	}
	var rows []struct {
		ID     bitrix.ID   `json:"ID"`
		Origin bitrix.Text `json:"ORIGIN_ID"`
	}
	params := map[string]any{
		"filter": map[string]any{"ORIGINATOR_ID": Originator, "@ORIGIN_ID": ids},
		"select": []string{"ID", "ORIGIN_ID"},
	}
	if err := s.clients(memberID).Call(ctx, "crm.lead.list", params, &rows); err != nil {
		for _, j := range byIntake {
			j.err = fmt.Errorf("find intake leads: %w", err)
		}
		return
	}
	for _, row := range rows {
		if j := byIntake[string(row.Origin)]; j != nil && j.leadID == 0 {
			j.leadID = int64(row.ID)
		}
	}
}

// finish marks the post created and drops the person's details from Redis.
func (s *Service) finish(ctx context.Context, key string, leadID, owner int64) error {
	p := s.rdb.TxPipeline()
	p.HSet(ctx, key, "state", string(Created), "lead_id", leadID, "owner", owner,
		"created_at", s.now().UnixMilli())
	p.HDel(ctx, key, "lead", "lease", "next_at")
	p.Expire(ctx, key, createdTTL)
	if _, err := p.Exec(ctx); err != nil {
		return fmt.Errorf("mark intake post created: %w", err)
	}
	return nil
}

// permanent marks an error that no retry can cure.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

// retryable reports whether a failed attempt is worth another: the portal's
// limits, outages and our own storage are; a refusal of the lead itself is not.
func retryable(err error) bool {
	var p permanent
	if errors.As(err, &p) {
		return false
	}
	if bitrix.Temporary(err) || errors.Is(err, bitrix.ErrOverload) {
		return true
	}
	var be *bitrix.Error
	return !errors.As(err, &be)
}

// failed records a failed attempt: a retry later, or a dead letter. It reports
// whether the entry left the stream.
func (s *Service) failed(ctx context.Context, memberID, entryID, intakeID string, err error) bool {
	if errors.Is(err, context.Canceled) {
		s.rdb.HDel(context.WithoutCancel(ctx), keyspace.IntakeRecord(memberID, intakeID), "lease")
		return false
	}
	key := keyspace.IntakeRecord(memberID, intakeID)
	attempts, herr := s.rdb.HIncrBy(ctx, key, "attempts", 1).Result()
	if herr != nil {
		s.log.Warn("count intake attempt", "member_id", memberID, "error", herr)
		return false
	}
	if retryable(err) && attempts < int64(s.cfg.MaxAttempts) {
		wait := s.backoff(int(attempts))
		if errors.Is(err, bitrix.ErrOverload) {
			wait = s.cfg.BackoffMax
		}
		var be *bitrix.Error
		if errors.As(err, &be) && be.ResetAt.After(s.now().Add(wait)) {
			wait = be.ResetAt.Sub(s.now())
		}
		s.rdb.HSet(ctx, key, "next_at", s.now().Add(wait).UnixMilli(), "lease", 0)
		attemptsFailed.Inc()
		s.log.Warn("intake lead not created yet", "member_id", memberID,
			"intake_id", intakeID, "attempt", attempts, "retry_in", wait, "error", err)
		return false
	}
	problem := deadProblem(err, attempts)
	p := s.rdb.TxPipeline()
	p.HSet(ctx, key, "state", string(Failed), "problem", problem, "lease", 0,
		"failed_at", s.now().UnixMilli())
	p.LPush(ctx, keyspace.IntakeDead(memberID), intakeID)
	if _, xerr := p.Exec(ctx); xerr != nil {
		s.log.Warn("mark intake post dead", "member_id", memberID, "error", xerr)
		return false
	}
	postsDead.Inc()
	s.log.Error("intake lead not created", "member_id", memberID, "intake_id", intakeID,
		"attempts", attempts, "error", err)
	return s.ack(ctx, memberID, entryID) == nil
}

// deadProblem says, for the post's status, why its lead was not created.
func deadProblem(err error, attempts int64) string {
	var be *bitrix.Error
	var p permanent
	switch {
	case retryable(err):
		return "the portal could not be reached after " + strconv.FormatInt(attempts, 10) +
			" attempts"
	case errors.As(err, &be) && be.Description != "":
		return "the portal refused the lead: " + be.Description
	case errors.As(err, &be):
		return "the portal refused the lead (" + be.Code + ")"
	case errors.As(err, &p):
		return "the stored post could not be read"
	}
	return "the lead could not be created"
}
