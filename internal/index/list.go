package index

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
)

// Query selects player sessions: a namespace ("" for all), equality requirements on the canonical fields,
// and a label selector. All are ANDed.
type Query struct {
	Namespace string
	Fields    map[string]string
	Labels    labels.Selector
}

func (q Query) matches(ps *gamev1.PlayerSession) bool {
	if ps == nil || (q.Namespace != "" && ps.Namespace != q.Namespace) {
		return false
	}
	for f, v := range q.Fields {
		if fieldValue(ps, f) != v {
			return false
		}
	}
	return q.Labels == nil || q.Labels.Empty() || q.Labels.Matches(labels.Set(ps.Labels))
}

// fingerprint identifies a query, so a continue token cannot be reused with other selectors.
func (q Query) fingerprint() string {
	parts := []string{"ns=" + q.Namespace}
	for f, v := range q.Fields {
		parts = append(parts, f+"="+v)
	}
	if q.Labels != nil {
		parts = append(parts, "labels="+q.Labels.String())
	}
	sort.Strings(parts)
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

// continueToken is what a continue token carries: the snapshot, where the last page ended, and the query.
type continueToken struct {
	V   int    `json:"v"`
	RV  uint64 `json:"rv"`
	Key string `json:"k"`
	Q   string `json:"q"`
}

// Tokens signs and verifies continue tokens (HMAC-SHA256), so they are opaque and tamper-evident. Replicas
// that share a key accept each other's tokens.
type Tokens struct{ key []byte }

// NewTokens returns a signer with key.
func NewTokens(key []byte) *Tokens { return &Tokens{key: key} }

func (t *Tokens) encode(c continueToken) string {
	payload, _ := json.Marshal(c)
	mac := hmac.New(sha256.New, t.key)
	mac.Write(payload)
	return base64.RawURLEncoding.EncodeToString(payload) + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil)[:16])
}

func (t *Tokens) decode(s string) (continueToken, error) {
	var c continueToken
	p, m, ok := strings.Cut(s, ".")
	payload, err1 := base64.RawURLEncoding.DecodeString(p)
	sig, err2 := base64.RawURLEncoding.DecodeString(m)
	if !ok || err1 != nil || err2 != nil {
		return c, apierrors.NewBadRequest("malformed continue token")
	}
	mac := hmac.New(sha256.New, t.key)
	mac.Write(payload)
	if !hmac.Equal(sig, mac.Sum(nil)[:16]) {
		return c, apierrors.NewBadRequest("invalid continue token: it was altered or issued by another server")
	}
	if err := json.Unmarshal(payload, &c); err != nil || c.V != 1 {
		return c, apierrors.NewBadRequest("malformed continue token")
	}
	return c, nil
}

// Page is one page of a list.
type Page struct {
	Items    []*gamev1.PlayerSession
	RV       uint64
	Continue string
}

// ListOptions are the paging and consistency options of a list, as kube-apiserver takes them.
type ListOptions struct {
	// Limit is the most items returned; 0 (none), or more than MaxPageSize, is MaxPageSize. A list with
	// more says so with a continue token.
	Limit int64
	// Continue is the continue token of the previous page.
	Continue string
	// ResourceVersion and ResourceVersionMatch choose the snapshot: "" or "0" the newest the index holds;
	// N (NotOlderThan, the default) at least N, waiting for the index to reach it; N with Exact exactly
	// snapshot N, while the index still keeps it.
	ResourceVersion      string
	ResourceVersionMatch metav1.ResourceVersionMatch
}

// List answers q from the index: at most opts.Limit items in key order, from the snapshot and position of
// the continue token, if any. It walks only the bucket of the most selective indexed field q constrains,
// so it costs what it returns, not what the index holds. A snapshot newer than the index (a token or a
// resourceVersion from a replica further ahead) is waited for, then refused as too large.
func (ix *Index) List(ctx context.Context, q Query, opts ListOptions, tokens *Tokens) (Page, error) {
	fp := q.fingerprint()
	var want uint64 // the snapshot asked for, 0 for the newest
	after := ""
	exact := false
	if opts.Continue != "" {
		c, err := tokens.decode(opts.Continue)
		if err != nil {
			return Page{}, err
		}
		if c.Q != fp {
			return Page{}, apierrors.NewBadRequest("continue token was issued for other selectors or another namespace")
		}
		want, after, exact = c.RV, c.Key, true
	} else if opts.ResourceVersion != "" && opts.ResourceVersion != "0" {
		rv, err := ParseRV(opts.ResourceVersion)
		if err != nil {
			return Page{}, apierrors.NewBadRequest(err.Error())
		}
		want, exact = rv, opts.ResourceVersionMatch == metav1.ResourceVersionMatchExact
	}
	if want > 0 {
		if err := ix.WaitFor(ctx, want); err != nil {
			return Page{}, err
		}
	}

	ix.mu.RLock()
	defer ix.mu.RUnlock()
	rv := max(ix.rv, want) // a snapshot newer than the newest write: WaitFor found the index holds it
	if exact {
		if want < ix.compactedRV || ix.skipped(want) {
			if opts.Continue == "" {
				return Page{}, errTooOld(want, ix.compactedRV)
			}
			// Too old to read consistently: as kube-apiserver does, 410 with a token that continues from the
			// same position in the current snapshot.
			fresh := tokens.encode(continueToken{V: 1, RV: ix.rv, Key: after, Q: fp})
			err := apierrors.NewResourceExpired("the continue token has expired: its snapshot is no longer kept; continue with the token in metadata.continue for an inconsistent continuation, or restart the list")
			err.ErrStatus.ListMeta.Continue = fresh
			return Page{}, err
		}
		rv = want
	}
	page := Page{RV: rv}
	var more bool
	page.Items, more = ix.collect(q, rv, after, PageSize(opts.Limit))
	if more {
		last := page.Items[len(page.Items)-1]
		page.Continue = tokens.encode(continueToken{V: 1, RV: rv, Key: Key(last.Namespace, last.Name), Q: fp})
	}
	return page, nil
}

// collect returns, in key order, at most limit items that match q in snapshot rv, after the key after (""
// for the start), and whether more match. It walks only the bucket that answers q. Called with ix.mu held.
func (ix *Index) collect(q Query, rv uint64, after string, limit int64) (items []*gamev1.PlayerSession, more bool) {
	visit := func(key string) bool {
		if key == after {
			return true
		}
		h := ix.objects[key]
		if h == nil {
			return true
		}
		ps := h.at(rv)
		if !q.matches(ps) {
			return true
		}
		if int64(len(items)) == limit {
			more = true
			return false
		}
		items = append(items, ps)
		return true
	}
	if name, ok := q.Fields[FieldName]; ok && q.Namespace != "" {
		if key := Key(q.Namespace, name); key > after {
			visit(key)
		}
		return items, more
	}
	if tree := ix.driver(q); tree != nil {
		tree.ascend(after, visit)
	}
	return items, more
}

// MaxPageSize is the most items one page holds, whatever the limit asked (none, or more): a list of more
// says so with a continue token. It bounds what one request costs (the live index's walk and the history
// store's reads alike) and keeps the arithmetic on a client's limit safe.
const MaxPageSize = 1000

// PageSize is the page size of a request that asked for limit (0 or less: none).
func PageSize(limit int64) int64 {
	if limit <= 0 || limit > MaxPageSize {
		return MaxPageSize
	}
	return limit
}

// driver picks the bucket that answers q: the one of its most selective indexed field, else its
// namespace, else everything.
func (ix *Index) driver(q Query) *bucket {
	for _, f := range indexedFields {
		v, ok := q.Fields[f]
		if f == FieldNamespace && !ok && q.Namespace != "" {
			v, ok = q.Namespace, true
		}
		if ok {
			return ix.bucket(f, v, false)
		}
	}
	return ix.all
}

// Get returns the current state of namespace/name, or nil.
func (ix *Index) Get(namespace, name string) *gamev1.PlayerSession {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if h := ix.objects[Key(namespace, name)]; h != nil {
		return h.latest()
	}
	return nil
}

// errTooOld is returned for a watch from a resourceVersion older than the event window, or an exact list
// of a snapshot older than the version window.
func errTooOld(rv, oldest uint64) error {
	return apierrors.NewResourceExpired(fmt.Sprintf("too old resource version: %d (%d)", rv, oldest))
}

// Sign returns an opaque, tamper-evident token carrying value (for other paged APIs, like the GameLift
// endpoint's game-session lists), bound to scope.
func (t *Tokens) Sign(scope, value string) string {
	return t.encode(continueToken{V: 1, Key: value, Q: scope})
}

// Verify returns the value of a token Sign made for scope.
func (t *Tokens) Verify(scope, token string) (string, error) {
	c, err := t.decode(token)
	if err != nil {
		return "", err
	}
	if c.Q != scope {
		return "", apierrors.NewBadRequest("token was issued for another request")
	}
	return c.Key, nil
}
