package index

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/internal/history"
)

// History is the history tier (history.Store): ended player sessions moved out of etcd. Lists merge it
// with the live index into one sequence in key order, paged by one continue token.
type History interface {
	List(ctx context.Context, q history.Query, after history.Key, limit int) ([]history.Record, error)
}

// ListAll answers q from both tiers as one: the live index's snapshot and the history store, merged in
// key order (namespace, name) with one continue token (the live snapshot's resourceVersion and the last
// key); a player session in both (archived, not yet deleted) is answered once, from the live tier. With
// h nil it is List. The history tier is read through the index of q's question (player session id, game
// session id with status, or player id); other selectors filter what it returns. A player session id
// found live is not looked for in the store.
func (ix *Index) ListAll(ctx context.Context, q Query, opts ListOptions, tokens *Tokens, h History) (Page, error) {
	if h == nil {
		return ix.List(ctx, q, opts, tokens)
	}
	live, err := ix.List(ctx, q, opts, tokens)
	if err != nil {
		return Page{}, err
	}
	if q.Fields[FieldPlayerSessionID] != "" && len(live.Items) > 0 {
		// A player session id ("psess-" + the object's UID) names one object: found live, it is the whole
		// answer (the store can hold only its archived copy), and the store's round trips are saved.
		return live, nil
	}
	var after history.Key
	if opts.Continue != "" {
		c, err := tokens.decode(opts.Continue) // List has checked it
		if err != nil {
			return Page{}, err
		}
		ns, name, _ := strings.Cut(c.Key, "/") // Key: neither part holds a slash
		after = history.Key{Namespace: ns, Name: name}
	}
	limit := int(PageSize(opts.Limit))
	old, err := historyList(ctx, h, q, after, limit+1)
	if err != nil {
		return Page{}, err
	}

	// Merge two key-ordered sequences; the live tier wins a tie.
	merged := make([]*gamev1.PlayerSession, 0, len(live.Items)+len(old))
	i, j := 0, 0
	for i < len(live.Items) || j < len(old) {
		switch {
		case j == len(old):
			merged = append(merged, live.Items[i])
			i++
		case i == len(live.Items):
			merged = append(merged, old[j])
			j++
		default:
			a, b := Key(live.Items[i].Namespace, live.Items[i].Name), Key(old[j].Namespace, old[j].Name)
			switch {
			case a < b:
				merged = append(merged, live.Items[i])
				i++
			case b < a:
				merged = append(merged, old[j])
				j++
			default:
				merged = append(merged, live.Items[i])
				i, j = i+1, j+1
			}
		}
	}
	page := Page{RV: live.RV, Items: merged}
	more := live.Continue != ""
	if len(merged) > limit {
		page.Items, more = merged[:limit], true
	}
	if more && len(page.Items) > 0 {
		last := page.Items[len(page.Items)-1]
		page.Continue = tokens.encode(continueToken{V: 1, RV: live.RV, Key: Key(last.Namespace, last.Name), Q: q.fingerprint()})
	}
	return page, nil
}

// GetAll returns namespace/name from the live index, else from the history store (nil: in neither).
func (ix *Index) GetAll(ctx context.Context, namespace, name string, h History) (*gamev1.PlayerSession, error) {
	if ps := ix.Get(namespace, name); ps != nil || h == nil {
		return ps, nil
	}
	recs, err := historyList(ctx, h, Query{Namespace: namespace, Fields: map[string]string{FieldName: name}}, history.Key{}, 1)
	if err != nil || len(recs) == 0 {
		return nil, err
	}
	return recs[0], nil
}

// historyList reads up to want player sessions matching q after the key after from h, in key order,
// through the store index of q's question; what the store cannot select (labels, other fields) is
// filtered here, reading on, in batches, until want are found or the store has no more.
func historyList(ctx context.Context, h History, q Query, after history.Key, want int) ([]*gamev1.PlayerSession, error) {
	hq := history.Query{Namespace: q.Namespace, Name: q.Fields[FieldName]}
	switch {
	case q.Fields[FieldPlayerSessionID] != "":
		hq.PlayerSessionID = q.Fields[FieldPlayerSessionID]
	case q.Fields[FieldGameSessionID] != "":
		hq.GameSessionID, hq.Status = q.Fields[FieldGameSessionID], q.Fields[FieldStatus]
	case q.Fields[FieldPlayerID] != "":
		hq.PlayerID = q.Fields[FieldPlayerID]
	}
	if ns, ok := q.Fields[FieldNamespace]; ok && hq.Namespace == "" {
		hq.Namespace = ns
	}
	var out []*gamev1.PlayerSession
	batch := max(want, 100)
	for {
		recs, err := h.List(ctx, hq, after, batch)
		if err != nil {
			return nil, fmt.Errorf("history store: %w", err)
		}
		for _, r := range recs {
			ps := &gamev1.PlayerSession{}
			if err := json.Unmarshal(r.Object, ps); err != nil {
				return nil, fmt.Errorf("history store: record %s/%s: %w", r.Namespace, r.Name, err)
			}
			if q.matches(ps) {
				out = append(out, ps)
				if want > 0 && len(out) == want {
					return out, nil
				}
			}
		}
		if len(recs) < batch {
			return out, nil // the store has no more
		}
		after = history.Key{Namespace: recs[len(recs)-1].Namespace, Name: recs[len(recs)-1].Name}
	}
}
