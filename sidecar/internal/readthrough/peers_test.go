package readthrough

import (
	"fmt"
	"net/http"
	"testing"
)

// TestPeerListenerCountsEveryAnswer: each answer of the peer listener is counted with CountPeer, by
// result, and none with the read-through's Count.
func TestPeerListenerCountsEveryAnswer(t *testing.T) {
	for _, busy := range []bool{false, true} {
		s := newSite(t, Options{})
		s.write("uploads/a.jpg", "a", mtime)
		peerCounts := map[string]int{}
		var local Local = s.dir
		if busy {
			local = busyDir{s.dir}
		}
		h := New(local, s.bucket, Options{Include: globs(t, "uploads/**"), Count: func(r string) { s.counts[r]++ },
			CountPeer: func(r string) { peerCounts[r]++ }})
		peer := h.PeerHandler("s3cret")
		auth := []string{"Authorization", "Bearer s3cret"}
		do(peer, http.MethodGet, "/uploads/a.jpg", auth...)
		do(peer, http.MethodGet, "/uploads/none.jpg", auth...)
		do(peer, http.MethodGet, "/uploads/x.php", auth...)
		do(peer, http.MethodPost, "/uploads/a.jpg", auth...)
		do(peer, http.MethodGet, "/uploads/a.jpg")
		want := map[string]int{PeerServed: 1, PeerMiss: 1, PeerRefused: 2, PeerUnauthorized: 1}
		if busy {
			want = map[string]int{PeerWriting: 1, PeerMiss: 1, PeerRefused: 2, PeerUnauthorized: 1}
		}
		if fmt.Sprint(peerCounts) != fmt.Sprint(want) || len(s.counts) != 0 {
			t.Errorf("busy=%v: peer counts %v, want %v; read-through counts %v, want none", busy, peerCounts, want, s.counts)
		}
	}
}
