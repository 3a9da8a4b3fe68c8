package gcsstore

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"cloud.google.com/go/storage"
	"google.golang.org/api/iterator"
)

// Listing shape. A listing of more than one page is split into folders listed at once: folders are
// expanded (one listing with a delimiter each, which also gives the objects directly in them) level by
// level until there are as many folders to list whole as requests in flight, or the tree is splitDepth
// levels deep. Expanding further costs a request per folder for little: the bench's 2,000 uploads in
// uploads/YYYY/MM (12 years) take 15 list requests so, 159 with every month listed apart. A listing that
// leaves folders out (ListSkipping: a lazy restore) expands no level below the one where it left one out:
// what it lists is a lazy site's eager part, its code, which a few pages hold (2,000 files in 40 plugin
// folders: 3 requests, the top level and plugins/ in two pages, against 43 with each plugin listed apart).
const (
	pageSize   = 1000
	splitDepth = 4
)

// List calls fn for every object under the prefix, with names relative to the prefix (raw: the caller
// decides which are safe to sync), except folder placeholders (IsPlaceholder), which are not files. fn is
// never called by two goroutines at once.
//
// Each object's Folder says whether objects named NAME/... exist too (GCS allows both; a file system does
// not; placeholders do not count: NAME/ alone is no folder of objects), and an object is given only once
// that is known: within a listing in name order, once a name past
// NAME/ has been seen. parallel > 1 lists a bucket of more than one page up to parallel requests at a time,
// split into folders (see splitDepth): on GCS a page of 1,000 objects takes 0.1-0.3 s, so a large bucket
// lists in a fraction of the time, and a server that reads a whole prefix for each page (fake-gcs-server)
// reads far less. Objects then arrive in no particular order; each one arrives once.
func (s *Store) List(ctx context.Context, parallel int, fn func(Object)) error {
	return s.ListSkipping(ctx, parallel, nil, fn)
}

// ListSkipping is List, but with parallel > 1 it lists no folder for which skip (given the folder's name
// relative to the prefix, without its final slash) is true, and none of its objects is given. An object
// X beside a skipped folder X/ is given as a folder (what the folder holds is not known). The listing is
// then partial: the caller must not read a missing object under a skipped folder as gone. A skipping
// listing starts with the top level, not with a first page of the whole bucket: that page would hold
// the skipped folders' objects as readily as any (a lazy site's first 1,000 names are as likely media
// as code), and on a server that reads a whole prefix per request (fake-gcs-server) it costs as much as
// the top level does. A bucket that fits in one page then takes a request per top-level folder more.
func (s *Store) ListSkipping(ctx context.Context, parallel int, skip func(folder string) bool, fn func(Object)) error {
	base := s.objectName("") // "" for the whole bucket
	l := &lister{s: s, base: base, fn: fn, skip: skip}
	if parallel <= 1 {
		return l.whole(ctx, base)
	}
	// One page first, given at once: a bucket that fits in it is listed with one request, as without
	// parallel. A larger one is then listed again, split; what the first page gave is not given again, and
	// the objects it could not tell about (the last ones: is there an x/... past the page?) are given when
	// the split lists them.
	var held []*storage.ObjectAttrs
	if skip == nil {
		var page []*storage.ObjectAttrs
		more, err := l.pages(ctx, base, "", func(p []*storage.ObjectAttrs) bool { page = p; return false })
		if err != nil {
			return err
		}
		h := l.holder()
		for _, a := range page {
			h.add(a)
		}
		if !more {
			h.flush()
			return nil
		}
		l.firstPage = make(map[string]bool, len(page))
		for _, a := range page {
			l.firstPage[a.Name] = true
		}
		for _, a := range h.held {
			l.firstPage[a.Name] = false
		}
		held = h.held
	}
	l.beside, l.filled = map[string]*storage.ObjectAttrs{}, map[string]bool{}
	if err := l.split(ctx, parallel); err != nil {
		return err
	}
	for dir, a := range l.beside { // the folders beside objects: listed now
		l.give(a, l.filled[dir])
	}
	for _, a := range held { // gone since the first page
		if !l.firstPage[a.Name] {
			l.give(a, false)
		}
	}
	return nil
}

type lister struct {
	s    *Store
	base string
	mu   sync.Mutex // serializes fn; guards firstPage
	fn   func(Object)
	// firstPage, during a split listing that began with a first page (not a skipping one): its names, true
	// once given.
	firstPage map[string]bool
	// beside, during a split listing: the objects X an expanded folder holds beside a subfolder X/, by
	// X/, given once every folder is listed, as folders when filled says an object (not a placeholder)
	// lies under X/.
	beside map[string]*storage.ObjectAttrs
	filled map[string]bool
	// skip names the folders a split listing leaves out (ListSkipping); nil: none.
	skip func(folder string) bool
}

func (l *lister) give(a *storage.ObjectAttrs, folder bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.base); i < len(a.Name); i++ {
		if a.Name[i] == '/' && l.beside[a.Name[:i+1]] != nil {
			l.filled[a.Name[:i+1]] = true
		}
	}
	if l.firstPage != nil {
		given, ok := l.firstPage[a.Name]
		if given {
			return
		}
		if ok {
			l.firstPage[a.Name] = true
		}
	}
	o := objectOf(strings.TrimPrefix(a.Name, l.base), a)
	o.Folder = folder
	l.fn(o)
}

// query is a listing of prefix, with only the attributes the sync reads.
func query(prefix, delimiter string) (*storage.Query, error) {
	q := &storage.Query{Prefix: prefix, Delimiter: delimiter, Projection: storage.ProjectionNoACL}
	if err := q.SetAttrSelection([]string{"Name", "Generation", "Size", "CRC32C", "ContentEncoding",
		"Metadata", "Updated", "Created"}); err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	return q, nil
}

// pages calls each with the pages of a listing of prefix (with delimiter, if not empty), folder
// placeholders left out, until there are no more or each returns false, and reports whether pages were
// left. A page is each's until it returns.
func (l *lister) pages(ctx context.Context, prefix, delimiter string, each func([]*storage.ObjectAttrs) bool) (bool, error) {
	q, err := query(prefix, delimiter)
	if err != nil {
		return false, err
	}
	pager := iterator.NewPager(l.s.bucket.Objects(ctx, q), pageSize, "")
	for {
		var page []*storage.ObjectAttrs
		l.s.request(OpList)
		next, err := pager.NextPage(&page)
		if err != nil {
			return false, fmt.Errorf("list %s: %w", l.s.loc, mapErr(err))
		}
		page = slices.DeleteFunc(page, func(a *storage.ObjectAttrs) bool { return a.Prefix == "" && IsPlaceholder(a.Name) })
		if !each(page) || next == "" {
			return next != "", nil
		}
	}
}

// whole lists every object under prefix, in name order, through one holder.
func (l *lister) whole(ctx context.Context, prefix string) error {
	h := l.holder()
	_, err := l.pages(ctx, prefix, "", func(page []*storage.ObjectAttrs) bool {
		for _, a := range page {
			h.add(a)
		}
		return true
	})
	if err != nil {
		return err
	}
	h.flush()
	return nil
}

// holder gives the objects of one listing in name order, each once it is known whether it is a folder of
// others too: an object x is held until a name past x/ arrives (a name x/... makes it a folder).
type holder struct {
	l    *lister
	held []*storage.ObjectAttrs
}

func (l *lister) holder() *holder { return &holder{l: l} }

func (h *holder) add(a *storage.ObjectAttrs) {
	keep := h.held[:0]
	for _, x := range h.held {
		switch {
		case strings.HasPrefix(a.Name, x.Name+"/"):
			h.l.give(x, true)
		case a.Name > x.Name+"/": // nothing can lie under x any more
			h.l.give(x, false)
		default:
			keep = append(keep, x)
		}
	}
	h.held = append(keep, a)
}

// flush gives what is held at the end of the listing: none of it is a folder.
func (h *holder) flush() {
	for _, x := range h.held {
		h.l.give(x, false)
	}
	h.held = nil
}

// split lists the tree below base in parallel: it expands folders level by level (a delimited listing of
// each gives the objects directly in it, and its subfolders), then lists the folders left whole, parallel
// requests at a time.
func (l *lister) split(ctx context.Context, parallel int) error {
	folders := []string{l.base}
	for depth := 0; depth < splitDepth && len(folders) > 0 && len(folders) < parallel; depth++ {
		var mu sync.Mutex
		var next []string
		err := l.each(ctx, parallel, folders, func(ctx context.Context, dir string) error {
			subs, err := l.expand(ctx, dir)
			mu.Lock()
			next = append(next, subs...)
			mu.Unlock()
			return err
		})
		if err != nil {
			return err
		}
		slices.Sort(next)
		if folders = l.unskipped(next); len(folders) < len(next) {
			break // what a skipping listing leaves is small (a lazy site's code): listed whole from here
		}
	}
	return l.each(ctx, parallel, folders, func(ctx context.Context, dir string) error {
		return l.whole(ctx, dir)
	})
}

// unskipped returns the folders the listing lists (all but those skip names), and marks an object beside
// a skipped folder a folder.
func (l *lister) unskipped(folders []string) []string {
	if l.skip == nil {
		return folders
	}
	var out []string
	for _, dir := range folders {
		if l.skip(strings.TrimSuffix(strings.TrimPrefix(dir, l.base), "/")) {
			l.mu.Lock()
			l.filled[dir] = true
			l.mu.Unlock()
			continue
		}
		out = append(out, dir)
	}
	return out
}

// expand gives the objects directly in dir that are no subfolder of dir too, and returns the subfolders
// (their names end in /). An object X beside a subfolder X/ waits in beside until X/ is listed: X/ may
// hold nothing but placeholders. The objects are given once every page is in: servers differ in how they
// page subfolders (fake-gcs-server repeats all of them on every page).
func (l *lister) expand(ctx context.Context, dir string) ([]string, error) {
	var objects []*storage.ObjectAttrs
	subs := map[string]bool{}
	_, err := l.pages(ctx, dir, "/", func(page []*storage.ObjectAttrs) bool {
		for _, a := range page {
			if a.Prefix != "" {
				subs[a.Prefix] = true
			} else {
				objects = append(objects, a)
			}
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	for _, a := range objects {
		if subs[a.Name+"/"] {
			l.mu.Lock()
			l.beside[a.Name+"/"] = a
			l.mu.Unlock()
		} else {
			l.give(a, false)
		}
	}
	return slices.Collect(maps.Keys(subs)), nil
}

// each runs fn for every dir, parallel at a time, and returns the first error (which cancels the rest).
func (l *lister) each(ctx context.Context, parallel int, dirs []string, fn func(context.Context, string) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan string)
	var once sync.Once
	var first error
	var wg sync.WaitGroup
	for range min(parallel, len(dirs)) {
		wg.Go(func() {
			for dir := range work {
				if err := fn(ctx, dir); err != nil {
					once.Do(func() { first = err })
					cancel()
					return
				}
			}
		})
	}
feed:
	for _, d := range dirs {
		select {
		case work <- d:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return first
}

// ListPrefix returns the objects whose names, relative to the prefix, start with rel, in name order: a
// listing of that string, not of a folder (a conflict copy's prefix ".filesync/conflicts/a.jpg." is no
// folder). Folder is not set.
func (s *Store) ListPrefix(ctx context.Context, rel string) ([]Object, error) {
	l := &lister{s: s, base: s.objectName("")}
	var out []Object
	_, err := l.pages(ctx, s.objectName(rel), "", func(page []*storage.ObjectAttrs) bool {
		for _, a := range page {
			out = append(out, objectOf(strings.TrimPrefix(a.Name, l.base), a))
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
