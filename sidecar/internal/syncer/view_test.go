package syncer

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/filesync/filesync/sidecar/internal/snapshot"
	"github.com/filesync/filesync/sidecar/internal/state"
)

// TestViewIsTheBucketsWhateverTheBase: the view (held as a difference from the base) answers Get, Len and
// All as a plain map of the bucket's objects would, through random listings, hints, deletes and every
// kind of write to the base (set to the view's object, to another, remote-only in batches, dropped),
// over enough paths for the arrays to merge. A write to the base never changes what the view holds, and
// the folders' counts of objects (the clash rule's) are the bucket's.
func TestViewIsTheBucketsWhateverTheBase(t *testing.T) {
	for seed := range uint64(3) {
		r := rand.New(rand.NewPCG(seed, 11))
		st, _, err := state.Open("", "gs://b")
		if err != nil {
			t.Fatal(err)
		}
		ix := newIndex(st)
		bucket := map[string]snapshot.Object{} // what the view must hold
		path := func() string { return fmt.Sprintf("uploads/%d/f%04d.jpg", r.IntN(5), r.IntN(3000)) }
		object := func() snapshot.Object {
			return snapshot.Object{Generation: int64(r.IntN(3) + 1), Size: 10, CRC32C: uint32(r.IntN(2)),
				ModTime: time.Unix(int64(r.IntN(2)), 0)} // the same version with another mtime, at times
		}
		check := func(step string) {
			t.Helper()
			if ix.remote.Len() != len(bucket) {
				t.Fatalf("seed %d, %s: Len %d, want %d", seed, step, ix.remote.Len(), len(bucket))
			}
			got := map[string]snapshot.Object{}
			for p, o := range ix.remote.All() {
				if _, dup := got[p]; dup {
					t.Fatalf("seed %d, %s: All yields %s twice", seed, step, p)
				}
				got[p] = o
			}
			if !maps.EqualFunc(got, bucket, sameObject) {
				for p, o := range bucket {
					if g, ok := got[p]; !ok || !sameObject(g, o) {
						t.Logf("%s: got %v %v want %v", p, g, ok, o)
					}
				}
				t.Fatalf("seed %d, %s: All yields %d objects unlike the %d of the bucket", seed, step, len(got), len(bucket))
			}
			dirs := map[string]int{} // the clash rule's counts of the objects under each folder
			for p := range bucket {
				count(dirs, p, 1)
			}
			if !maps.Equal(ix.remoteDirs, dirs) {
				t.Fatalf("seed %d, %s: objects under each folder %v, want %v", seed, step, ix.remoteDirs, dirs)
			}
			for range 200 {
				p := path()
				o, ok := ix.remote.Get(p)
				if want, in := bucket[p]; ok != in || (in && !sameObject(o, want)) {
					t.Fatalf("seed %d, %s: Get(%s) = %v %v, want %v %v", seed, step, p, o, ok, want, in)
				}
			}
		}
		for round := range 30 {
			if round%10 == 0 { // a listing
				l := map[string]snapshot.Object{}
				for p, o := range bucket {
					if r.IntN(10) > 0 {
						l[p] = o
					}
				}
				for range 500 {
					l[path()] = object()
				}
				ix.replaceRemote(viewOf(l, st.Key), map[string]struct{}{})
				bucket = l
				check("after a listing")
			}
			for range 400 {
				p := path()
				switch r.IntN(6) {
				case 0:
					o := object()
					ix.setRemote(p, o)
					bucket[p] = o
				case 1:
					ix.dropRemote(p)
					delete(bucket, p)
				case 2: // recorded as the bucket holds it (a download, an upload)
					if o, ok := bucket[p]; ok {
						ix.setBase(p, snapshot.Base{Object: o, ModTime: 1})
					}
				case 3: // recorded as another version than the bucket's
					ix.setBase(p, snapshot.Base{Object: object(), ModTime: 2})
				case 4:
					ix.dropBase(p)
				case 5: // remote-only records, in a batch
					var batch []string
					for q := range bucket {
						if r.IntN(8) == 0 {
							batch = append(batch, q)
						}
					}
					slices.Sort(batch)
					ix.setRemoteOnly(batch)
				}
			}
			check(fmt.Sprintf("round %d", round))
		}
		// In sync (the base records every object the bucket holds, and nothing else): the view holds
		// nothing of its own.
		for p := range st.Entries().All() {
			if _, ok := bucket[p]; !ok {
				ix.dropBase(p)
			}
		}
		ix.setRemoteOnly(slices.Sorted(maps.Keys(bucket)))
		check("in sync")
		if ix.remote.over.Len() != 0 || len(ix.remote.gone) != 0 {
			t.Fatalf("seed %d, in sync: the view holds %d objects and %d gone paths of its own", seed, ix.remote.over.Len(), len(ix.remote.gone))
		}
	}
}

// TestWholeListingHandedToTheBase: the whole listing after a lazy restore (code in the base already,
// every media object new) recorded remote-only in one batch: the base takes the view's own objects
// (handOver), records every one at its object and mtime, the view still answers as the listing and holds
// nothing of its own, and a later listing and remote change are seen as before.
func TestWholeListingHandedToTheBase(t *testing.T) {
	st, _, err := state.Open("", "gs://b")
	if err != nil {
		t.Fatal(err)
	}
	ix := newIndex(st)
	l := map[string]snapshot.Object{}
	for i := range 10 {
		p := fmt.Sprintf("plugins/p/f%d.php", i)
		o := snapshot.Object{Generation: int64(i + 1), Size: 3, CRC32C: 1}
		l[p] = o
		ix.setBase(p, snapshot.Base{Object: o, ModTime: 1})
	}
	var media []string
	for i := range 3000 {
		p := fmt.Sprintf("uploads/%d/m%05d.jpg", i%4, i)
		l[p] = snapshot.Object{Generation: int64(100 + i), Size: 7, CRC32C: uint32(i), ModTime: time.Unix(int64(i), 5)}
		media = append(media, p)
	}
	ix.replaceRemote(viewOf(l, st.Key), map[string]struct{}{})
	slices.Sort(media)
	if !ix.remote.handOver(media) {
		t.Fatal("the view's objects were not handed to the base")
	}
	if ix.remote.over.Len() != 0 || ix.remote.Len() != len(l) || st.Len() != len(l) {
		t.Fatalf("after: view holds %d of its own, %d in all; base %d; want 0, %d, %d", ix.remote.over.Len(), ix.remote.Len(), st.Len(), len(l), len(l))
	}
	for p, o := range l {
		r, ok := ix.remote.Get(p)
		b, inBase := st.Get(p)
		if !ok || !sameObject(r, o) || !inBase || !sameObject(b.Object, o) || b.RemoteOnly != strings.HasPrefix(p, "uploads/") {
			t.Fatalf("%s: view %v %v, base %+v %v; want %v", p, r, ok, b, inBase, o)
		}
	}
	// Not again: the base records remote-only paths now.
	ix.setRemote("uploads/new.jpg", snapshot.Object{Generation: 9999, Size: 1})
	if ix.remote.handOver([]string{"uploads/new.jpg"}) {
		t.Fatal("handed over a second time")
	}
}

// TestListingKeepsTheBaseNames: a listing holds, for each name the base has, the base's own string (the
// name is held once), and for the others the string it was given.
func TestListingKeepsTheBaseNames(t *testing.T) {
	st, _, err := state.Open("", "gs://b")
	if err != nil {
		t.Fatal(err)
	}
	st.Set("a/known.jpg", snapshot.Base{Object: snapshot.Object{Generation: 1}})
	held, _ := st.Key("a/known.jpg")
	b := listedBuilder{canon: st.Key}
	listedName := strings.Clone("a/known.jpg") // as a page decodes it: another string
	newName := "a/new.jpg"
	b.add(listedName, snapshot.Object{Generation: 1})
	b.add(newName, snapshot.Object{Generation: 2})
	l := b.listed()
	if k, ok := l.m.Key("a/known.jpg"); !ok || unsafe.StringData(k) != unsafe.StringData(held) {
		t.Fatalf("Key(a/known.jpg) = %q, %v: not the base's string", k, ok)
	}
	if k, ok := l.m.Key("a/new.jpg"); !ok || unsafe.StringData(k) != unsafe.StringData(newName) {
		t.Fatalf("Key(a/new.jpg) = %q, %v: not the string given", k, ok)
	}
}
