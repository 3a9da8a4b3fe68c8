package readthrough

import (
	"context"
	"crypto/subtle"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// SecretHeader carries the shared secret on peer requests (Authorization: Bearer <secret>).
const SecretHeader = "Authorization"

// Peers asks the other replicas' sidecars for a file the bucket does not have yet (the writer uploads it
// after --settle): in parallel, with a short timeout, the first answer wins and is streamed, never stored
// (storing it would race the writer's upload).
type Peers struct {
	// Resolve returns the peers' host:port addresses, this replica excluded.
	Resolve func(ctx context.Context) ([]string, error)
	Secret  string
	Timeout time.Duration // for a peer's response headers (DefaultPeerTimeout)
	Client  *http.Client
	Log     *slog.Logger
}

// forwarded are the request headers a peer needs to answer as a file server would.
var forwarded = []string{"Range", "If-Range", "If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since"}

// relayed are the response headers passed back to the client.
var relayed = []string{"Content-Type", "Content-Length", "Content-Range", "Accept-Ranges", "ETag", "Last-Modified",
	"X-Content-Type-Options"}

// serve asks every peer for rel and streams the first useful answer (200, 206, 304, 412, 416) to w. It
// reports whether one answered.
func (p *Peers) serve(w http.ResponseWriter, r *http.Request, rel string) bool {
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = DefaultPeerTimeout
	}
	log := p.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	addrs, err := p.Resolve(rctx)
	if err != nil {
		log.Debug("read-through: resolving peers", "err", err)
		return false
	}
	if len(addrs) == 0 {
		return false
	}
	// Every request has its own context: the winner's lives on while its body streams, the others are
	// cancelled as soon as there is a winner, and all are cancelled if none has answered by the timeout.
	type answer struct {
		resp   *http.Response
		cancel context.CancelFunc
		i      int
	}
	answers := make(chan answer, len(addrs))
	cancels := make([]context.CancelFunc, len(addrs))
	winner := -1
	var wg sync.WaitGroup
	for i, addr := range addrs {
		ctx, cancelOne := context.WithCancel(r.Context())
		cancels[i] = cancelOne
		req, err := http.NewRequestWithContext(ctx, r.Method, "http://"+addr+"/"+(&url.URL{Path: rel}).EscapedPath(), nil)
		if err != nil {
			cancelOne()
			continue
		}
		req.Header.Set(SecretHeader, "Bearer "+p.Secret)
		for _, k := range forwarded {
			if v := r.Header.Get(k); v != "" {
				req.Header.Set(k, v)
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := p.Client.Do(req)
			if err != nil {
				cancelOne()
				return
			}
			switch resp.StatusCode {
			case http.StatusOK, http.StatusPartialContent, http.StatusNotModified, http.StatusPreconditionFailed,
				http.StatusRequestedRangeNotSatisfiable:
				answers <- answer{resp, cancelOne, i}
			default:
				if resp.StatusCode != http.StatusNotFound {
					log.Debug("read-through: peer refused", "peer", addr, "status", resp.StatusCode)
				}
				resp.Body.Close()
				cancelOne()
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	// Whoever is not picked (every answer but the winner, late ones too): close what they answered,
	// cancel them.
	picked := make(chan struct{})
	pick := sync.OnceFunc(func() { close(picked) })
	defer pick()
	go func() {
		<-picked
		for i, c := range cancels {
			if i != winner {
				c()
			}
		}
		for _, a := range drainNow(answers) {
			a.resp.Body.Close()
			a.cancel()
		}
		<-done
		close(answers)
		for a := range answers {
			a.resp.Body.Close()
			a.cancel()
		}
	}()
	var win *answer
	for win == nil {
		select {
		case a := <-answers:
			win = &a
		case <-done:
			select {
			case a := <-answers:
				win = &a
			default:
				return false
			}
		case <-rctx.Done():
			return false
		}
	}
	winner = win.i
	pick()
	defer win.cancel()
	defer win.resp.Body.Close()
	for _, k := range relayed {
		if v := win.resp.Header.Get(k); v != "" {
			w.Header().Set(k, v)
		}
	}
	w.Header().Set(SourceHeader, ResultPeer)
	w.WriteHeader(win.resp.StatusCode)
	if r.Method != http.MethodHead {
		_, _ = io.Copy(w, win.resp.Body)
	}
	return true
}

// drainNow returns what ch holds right now, without waiting.
func drainNow[T any](ch chan T) []T {
	var out []T
	for {
		select {
		case v := <-ch:
			out = append(out, v)
		default:
			return out
		}
	}
}

// PeerHandler serves the peers' requests: only with the shared secret (401 without it), only local files
// that no one has open for writing, under the same rules as the read-through; never from the bucket or
// other peers. Every answer is counted with Options.CountPeer (Peer*), none with Options.Count.
func (h *Handler) PeerHandler(secret string) http.Handler {
	want := []byte("Bearer " + secret)
	count := h.opt.CountPeer
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get(SecretHeader))
		if secret == "" || subtle.ConstantTimeCompare(got, want) != 1 {
			count(PeerUnauthorized)
			w.Header().Set("WWW-Authenticate", "Bearer")
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		rel, status := h.check(w, r, count)
		if status != 0 {
			return
		}
		switch h.serveLocal(w, r, rel, true) {
		case served:
			count(PeerServed)
		case absent:
			count(PeerMiss)
			notFound(w)
		case writing:
			count(PeerWriting)
			notFound(w)
		case refused:
			h.refuse(w, http.StatusNotFound, count)
		}
	})
}

// DNSPeers resolves name (a headless Service of the Deployment) to the peers' addresses on port, leaving
// out this pod's own addresses (self), and caches the answer for a few seconds.
func DNSPeers(name string, port int, self func() []net.IP) func(ctx context.Context) ([]string, error) {
	var mu sync.Mutex
	var cached []string
	var at time.Time
	const ttl = 5 * time.Second
	return func(ctx context.Context) ([]string, error) {
		mu.Lock()
		defer mu.Unlock()
		if cached != nil && time.Since(at) < ttl {
			return cached, nil
		}
		ips, err := net.DefaultResolver.LookupIPAddr(ctx, name)
		if err != nil {
			return nil, err
		}
		own := self()
		out := []string{}
	next:
		for _, ip := range ips {
			for _, o := range own {
				if o.Equal(ip.IP) {
					continue next
				}
			}
			out = append(out, net.JoinHostPort(ip.IP.String(), strconv.Itoa(port)))
		}
		cached, at = out, time.Now()
		return out, nil
	}
}

// OwnIPs returns the addresses of this host's interfaces (a pod's own IP among them).
func OwnIPs() []net.IP {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []net.IP
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			out = append(out, n.IP)
		}
	}
	return out
}
