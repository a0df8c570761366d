package queue

import "context"

// TurnUnsettled takes one turn's work of the portal and processes it, decisions and
// writes included, but never settles it, as an instance that dies right before its
// settle step. It returns how many leads the turn took.
func (q *Queue) TurnUnsettled(ctx context.Context, memberID string) (int, error) {
	units, _, _, err := q.take(ctx, memberID)
	if err != nil {
		return 0, err
	}
	q.process(ctx, memberID, units)
	return len(units), nil
}
