// Package readthrough serves the synced directory to the app's web server on a loopback address, so that a
// file another replica has just written is never a 404 here: the local file if present; else the object,
// looked up in the bucket itself and downloaded into the directory (Fetcher); else the file from a peer
// replica, streamed and not stored; else 404 with Cache-Control: no-store. It also serves the peers'
// requests (PeerHandler), from local, closed files only, behind a shared secret. docs/design.md
// ("Read-through") is the contract.
package readthrough

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/filesync/filesync/sidecar/internal/filter"
	"github.com/filesync/filesync/sidecar/internal/gcsstore"
	"github.com/filesync/filesync/sidecar/internal/localfs"
	"github.com/filesync/filesync/sidecar/internal/mediatype"
	"github.com/filesync/filesync/sidecar/internal/snapshot"
)

// Fetcher downloads a path from the bucket into the directory (syncer.Syncer.Fetch): gcsstore.ErrNotFound
// if there is no such object.
type Fetcher interface {
	Fetch(ctx context.Context, path string) (snapshot.Stamp, error)
}

// Local is the synced directory (localfs.Dir): open a regular file for reading without following any
// symlink (fs.ErrNotExist if absent; localfs.ErrSymlink or localfs.ErrNotRegular if something else is
// there); is that open file open for writing.
type Local interface {
	OpenRead(path string) (*os.File, error)
	InUseFile(f *os.File) bool
}

// Results, as counted by Options.Count: where a request was answered from.
const (
	ResultLocal   = "local"   // the file was in the directory
	ResultBucket  = "bucket"  // downloaded from the bucket, then served
	ResultPeer    = "peer"    // streamed from a peer replica
	ResultMiss    = "miss"    // nowhere: 404, no-store
	ResultRefused = "refused" // not a path the read-through serves (excluded, unsafe, not included, executable, a symlink)
	ResultError   = "error"   // the bucket failed: 502
)

// Peer listener results, as counted by Options.CountPeer: what the peer listener answered another replica.
const (
	PeerServed       = "served"       // the local file (200, 206, 304, ...)
	PeerMiss         = "miss"         // not here: 404
	PeerWriting      = "writing"      // here but open for writing: 404 (the writer's upload will publish it)
	PeerRefused      = ResultRefused  // not a path it serves, or not GET/HEAD: 403, 404, 405
	PeerUnauthorized = "unauthorized" // without the shared secret: 401
)

// SourceHeader tells where a read-through answer came from: local, bucket or peer (Result*).
const SourceHeader = "X-Filesync-Read-Through"

// FetchHeader set to "store" asks for the file in the directory or nothing: the local file, else the
// bucket's (downloaded), else 404 at once; no peers, and a remembered miss is looked up again. The
// WordPress plugin uses it for an original it must process (sub-sizes, editing), polling until the
// writer's upload lands.
const FetchHeader = "X-Filesync-Fetch"

// Defaults of Options.
const (
	DefaultMissTTL     = 2 * time.Second
	DefaultLookupRate  = 10 // bucket lookups that find nothing, per second, after the burst
	DefaultLookupBurst = 20
	DefaultPeerTimeout = time.Second
	DefaultFetchLimit  = 2 * time.Minute
)

// Options configure a Handler. Include is required: nothing outside it is served.
type Options struct {
	Include *filter.Filter // --read-through-include: the paths served (Excluded reports a match)
	Exclude *filter.Filter // --exclude: never served
	Peers   *Peers         // nil: no peers
	// MissTTL is how long a path found nowhere is remembered (answered 404 without a lookup), and one whose
	// lookup failed (answered 502 without a lookup).
	MissTTL time.Duration
	// LookupRate and LookupBurst bound the bucket lookups that end without a file to serve, misses and
	// failures alike (a token bucket): with the bucket empty of tokens, a local miss goes to the peers
	// only. See Bound.
	LookupRate  float64
	LookupBurst int
	FetchLimit  time.Duration       // how long one download into the directory may take
	Count       func(result string) // the read-through's answers (Result*)
	CountPeer   func(result string) // the peer listener's answers (Peer*)
	Log         *slog.Logger
	Now         func() time.Time
}

// Handler is the read-through: GET and HEAD /<path relative to --dir>.
type Handler struct {
	local  Local
	fetch  Fetcher
	opt    Options
	flight singleflight.Group
	misses *missCache
}

// New returns the read-through handler over local, downloading misses with fetch.
func New(local Local, fetch Fetcher, opt Options) *Handler {
	if opt.MissTTL <= 0 {
		opt.MissTTL = DefaultMissTTL
	}
	if opt.LookupRate <= 0 {
		opt.LookupRate = DefaultLookupRate
	}
	if opt.LookupBurst <= 0 {
		opt.LookupBurst = DefaultLookupBurst
	}
	if opt.FetchLimit <= 0 {
		opt.FetchLimit = DefaultFetchLimit
	}
	if opt.Count == nil {
		opt.Count = func(string) {}
	}
	if opt.CountPeer == nil {
		opt.CountPeer = func(string) {}
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &Handler{local: local, fetch: fetch, opt: opt,
		misses: newMissCache(opt.MissTTL, opt.LookupRate, opt.LookupBurst, opt.Now)}
}

// Bound is the most bucket lookups that end without a file to serve over d: the burst, plus the rate for
// the time after it. A lookup is one metadata get, and one read when the object was there but its download
// failed (a file/folder clash, a checksum mismatch). A crawler asking for any number of missing or
// unservable paths costs at most this many lookups; repeated requests for one such path cost one per
// MissTTL at most, within the same bound.
func (h *Handler) Bound(d time.Duration) int {
	return h.opt.LookupBurst + int(h.opt.LookupRate*d.Seconds())
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rel, status := h.check(w, r, h.opt.Count)
	if status != 0 {
		return
	}
	w.Header().Set(SourceHeader, ResultLocal)
	switch h.serveLocal(w, r, rel, false) {
	case served:
		h.opt.Count(ResultLocal)
		return
	case refused:
		h.refuse(w, http.StatusNotFound, h.opt.Count)
		return
	}
	w.Header().Del(SourceHeader)
	store := r.Header.Get(FetchHeader) == "store"
	if !store && h.misses.remembered(rel) {
		h.opt.Count(ResultMiss)
		notFound(w)
		return
	}
	if h.misses.failing(rel) {
		h.badGateway(w) // the lookup failed a moment ago: not again before MissTTL
		return
	}
	found, err := h.fromBucket(r.Context(), rel)
	switch {
	case found:
		w.Header().Set(SourceHeader, ResultBucket)
		if h.serveLocal(w, r, rel, false) == served {
			h.opt.Count(ResultBucket)
			return
		}
	case err != nil:
		h.badGateway(w)
		return
	}
	if store {
		h.opt.Count(ResultMiss) // the caller needs the file in the directory: a peer's bytes would not be
		notFound(w)
		return
	}
	w.Header().Del(SourceHeader)
	if h.opt.Peers != nil && h.opt.Peers.serve(w, r, rel) {
		h.opt.Count(ResultPeer)
		return
	}
	h.misses.remember(rel)
	h.opt.Count(ResultMiss)
	notFound(w)
}

// badGateway answers a request whose bucket lookup failed, now or a moment ago (the failure was logged
// where the lookup was made).
func (h *Handler) badGateway(w http.ResponseWriter) {
	h.opt.Count(ResultError)
	w.Header().Del(SourceHeader)
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, "bucket unavailable", http.StatusBadGateway)
}

// fromBucket downloads rel into the directory, one download per path however many requests wait for it
// (they share it), detached from the first requester's cancellation. It reports whether the file is there
// now; a lookup beyond the budget is not made (false, nil). A lookup that ends without a file keeps its
// token, a miss (remembered by the caller) or a failure (remembered here, and logged once per path: again
// only after the path was found, found missing, or failed another way).
func (h *Handler) fromBucket(ctx context.Context, rel string) (bool, error) {
	ch := h.flight.DoChan(rel, func() (any, error) {
		if !h.misses.reserve() {
			return false, nil // over budget: peers only
		}
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.opt.FetchLimit)
		defer cancel()
		_, err := h.fetch.Fetch(fctx, rel)
		switch {
		case errors.Is(err, gcsstore.ErrNotFound):
			h.misses.recovered(rel)
			return false, nil
		case err != nil:
			if h.misses.fail(rel, err) {
				h.opt.Log.Warn("read-through: fetching from the bucket failed (answered 502; logged again only if it changes)",
					"path", rel, "err", err)
			} else {
				h.opt.Log.Debug("read-through: fetching from the bucket failed again", "path", rel, "err", err)
			}
			return false, err
		}
		h.misses.refund() // found: only lookups that end without a file draw on the budget
		h.misses.recovered(rel)
		return true, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return false, res.Err
		}
		return res.Val.(bool), nil
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// check refuses what is not served, answering the request itself and counting it as refused (with count:
// the read-through's or the peer listener's counter); it returns the path relative to --dir, or a
// non-zero status when it answered.
func (h *Handler) check(w http.ResponseWriter, r *http.Request, count func(string)) (string, int) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		count(ResultRefused)
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return "", http.StatusMethodNotAllowed
	}
	rel, status := Refuse(r.URL.Path, h.opt.Include, h.opt.Exclude)
	if status != 0 {
		h.refuse(w, status, count)
		return "", status
	}
	return rel, 0
}

// refuse answers a request for a path that is not served, and counts it as refused.
func (h *Handler) refuse(w http.ResponseWriter, status int, count func(string)) {
	count(ResultRefused)
	w.Header().Del(SourceHeader)
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, http.StatusText(status), status)
}

// Refuse decides whether the URL path p names a file the read-through (and a peer) may serve: it returns
// the path relative to --dir and 0, or the status to answer with: 404 for what is not served (outside the
// include globs, excluded, filesync's own folder, unsafe names, directories), 403 for what a web server
// would run or obey (filter.Executable: x.php, x.php.jpg, .htaccess, ...), which is never fetched: the
// read-through puts no script from the bucket where a web server would run it.
func Refuse(p string, include, exclude *filter.Filter) (string, int) {
	rel := strings.TrimPrefix(p, "/")
	switch {
	case rel == "" || strings.HasSuffix(rel, "/"):
		return "", http.StatusNotFound
	case filter.CheckName(rel) != nil || path.Clean(rel) != rel:
		return "", http.StatusNotFound
	case filter.Executable(rel):
		return "", http.StatusForbidden
	case filter.Internal(rel) || exclude.Excluded(rel) || include == nil || !include.Excluded(rel):
		return "", http.StatusNotFound
	}
	return rel, 0
}

// local is what serveLocal did.
type local int

const (
	absent  local = iota // not in the directory
	served               // answered from the directory
	refused              // something is there that is not served: a symlink on the way, not a regular file
	writing              // (for a peer) there, but open for writing: the writer's upload will publish it
)

// serveLocal serves rel from the directory if it is a regular file reached without following a symlink
// (with peer: only if no one has it open for writing).
func (h *Handler) serveLocal(w http.ResponseWriter, r *http.Request, rel string, peer bool) local {
	f, err := h.local.OpenRead(rel)
	switch {
	case errors.Is(err, localfs.ErrSymlink) || errors.Is(err, localfs.ErrNotRegular):
		h.opt.Log.Debug("read-through: not serving", "path", rel, "err", err)
		return refused
	case err != nil:
		if !errors.Is(err, fs.ErrNotExist) {
			h.opt.Log.Debug("read-through: cannot open local file", "path", rel, "err", err)
		}
		return absent
	}
	defer f.Close()
	if peer && h.local.InUseFile(f) {
		return writing
	}
	fi, err := f.Stat()
	if err != nil {
		return absent
	}
	serveFile(w, r, rel, f, fi)
	return served
}

// serveFile answers as a file server does (http.ServeContent: Range, If-None-Match, If-Modified-Since,
// HEAD), with the ETag Apache makes for `FileETag MTime Size` (its default), so the first answer and the
// web server's later ones agree.
func serveFile(w http.ResponseWriter, r *http.Request, rel string, f *os.File, fi os.FileInfo) {
	h := w.Header()
	h.Set("ETag", ETag(fi.Size(), fi.ModTime()))
	h.Set("X-Content-Type-Options", "nosniff")
	if ct := ContentType(rel); ct != "" {
		h.Set("Content-Type", ct)
	}
	http.ServeContent(w, r, rel, fi.ModTime(), f)
}

// ETag is Apache's `FileETag MTime Size` tag: size and mtime (microseconds) in hex.
func ETag(size int64, mtime time.Time) string {
	return `"` + strconv.FormatInt(size, 16) + "-" + strconv.FormatInt(mtime.UnixMicro(), 16) + `"`
}

// ContentType is the media type of rel by its extension, from the sidecar's one table (internal/mediatype:
// a scratch image has no mime tables), with charset=utf-8 for text; "" if unknown: http.ServeContent
// sniffs.
func ContentType(rel string) string {
	t, ok := mediatype.Known(rel)
	switch {
	case !ok:
		return ""
	case strings.HasPrefix(t, "text/"):
		return t + "; charset=utf-8"
	}
	return t
}

func notFound(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, "404 page not found", http.StatusNotFound)
}

// missCache remembers paths found nowhere, and paths whose lookup failed, for a while, and holds the token
// bucket of bucket lookups.
type missCache struct {
	mu     sync.Mutex
	ttl    time.Duration
	until  map[string]time.Time
	failed map[string]failure
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
	now    func() time.Time
}

// maxRemembered caps the miss cache; past it, expired entries are dropped, then the oldest half.
const maxRemembered = 10000

func newMissCache(ttl time.Duration, rate float64, burst int, now func() time.Time) *missCache {
	return &missCache{ttl: ttl, until: map[string]time.Time{}, failed: map[string]failure{}, rate: rate,
		burst: float64(burst), tokens: float64(burst), last: now(), now: now}
}

// failure is a path's last failed lookup: answered 502 without a lookup until until; kept after that (up
// to maxRemembered paths) so that the same failure is not logged again.
type failure struct {
	until time.Time
	err   string
}

// failing reports whether rel's lookup failed less than ttl ago.
func (c *missCache) failing(rel string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, ok := c.failed[rel]
	return ok && c.now().Before(f.until)
}

// fail remembers that rel's lookup failed with err, and reports whether that is news (rel had not failed
// since it was last found or found missing, or it failed another way): then it deserves a warning.
func (c *missCache) fail(rel string, err error) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	prev, ok := c.failed[rel]
	if !ok && len(c.failed) >= maxRemembered {
		for k, f := range c.failed {
			if !now.Before(f.until) {
				delete(c.failed, k)
			}
		}
		for k := range c.failed { // map order: an arbitrary half
			if len(c.failed) < maxRemembered/2 {
				break
			}
			delete(c.failed, k)
		}
	}
	c.failed[rel] = failure{until: now.Add(c.ttl), err: err.Error()}
	return !ok || prev.err != err.Error()
}

// recovered forgets rel's failure: its lookup found the object, or found it missing.
func (c *missCache) recovered(rel string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.failed, rel)
}

func (c *missCache) remembered(rel string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.until[rel]
	if ok && c.now().Before(t) {
		return true
	}
	delete(c.until, rel)
	return false
}

func (c *missCache) remember(rel string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if len(c.until) >= maxRemembered {
		for k, t := range c.until {
			if !now.Before(t) {
				delete(c.until, k)
			}
		}
		for k := range c.until { // map order: an arbitrary half
			if len(c.until) < maxRemembered/2 {
				break
			}
			delete(c.until, k)
		}
	}
	c.until[rel] = now.Add(c.ttl)
}

// reserve takes a lookup token if one is left (refilled at rate, up to burst).
func (c *missCache) reserve() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if d := now.Sub(c.last); d > 0 {
		c.tokens = min(c.burst, c.tokens+d.Seconds()*c.rate)
		c.last = now
	}
	if c.tokens < 1 {
		return false
	}
	c.tokens--
	return true
}

// refund gives back a token whose lookup found the file: only misses and failures draw on the budget.
func (c *missCache) refund() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tokens = min(c.burst, c.tokens+1)
}
