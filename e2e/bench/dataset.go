package main

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/filesync/filesync/e2e/internal/harness"
)

// file is one file of a generated dataset: a slash-separated path relative to the dataset root.
type file struct {
	Rel  string
	Size int64
}

// datasetSpec describes a WordPress-like media library: mostly images of MinImage..MaxImage bytes
// (log-uniform, like real uploads and their thumbnails) in uploads/YYYY/MM/, plus a few large files
// (videos, PDFs, archives) of MinLarge..MaxLarge bytes that bring the total near TotalBytes.
type datasetSpec struct {
	Name       string
	Files      int
	Large      int
	MinImage   int64
	MaxImage   int64
	MinLarge   int64
	MaxLarge   int64
	TotalBytes int64
	Seed       uint64
}

const (
	kb = 1 << 10
	mb = 1 << 20
)

// spec2k is the dataset: 2,000 files, ~240 MB, 20-300 KB images plus a dozen 2-10 MB files.
func spec2k() datasetSpec {
	return datasetSpec{Name: "wp2k", Files: 2000, Large: 12, MinImage: 20 * kb, MaxImage: 300 * kb,
		MinLarge: 2 * mb, MaxLarge: 10 * mb, TotalBytes: 240 * mb, Seed: 2000}
}

// spec20k is the 20,000-file variant. It keeps the layout and the shape of the size distribution but
// divides every size by ten (~240 MB in all: a thumbnail-heavy library), so it measures per-file and
// listing costs rather than bytes, and a run stays within minutes on a 2-core machine.
func spec20k() datasetSpec {
	return datasetSpec{Name: "wp20k", Files: 20000, Large: 120, MinImage: 2 * kb, MaxImage: 30 * kb,
		MinLarge: 200 * kb, MaxLarge: 1 * mb, TotalBytes: 240 * mb, Seed: 20000}
}

// spec100k is 100,000 tiny files, used only to measure the memory filesync needs per known file.
func spec100k() datasetSpec {
	return datasetSpec{Name: "tiny100k", Files: 100000, MinImage: 256, MaxImage: 2 * kb, Seed: 100000}
}

var imageExts = []string{".jpg", ".jpg", ".jpg", ".jpg", ".jpg", ".jpg", ".jpg", ".png", ".png", ".webp"}
var largeExts = []string{".mp4", ".pdf", ".zip", ".mov"}
var slugs = []string{"img", "photo", "header", "banner", "product", "team", "gallery", "cover", "screenshot", "logo"}
var thumbs = []string{"", "", "-150x150", "-300x200", "-768x512", "-1024x683"}

// generate returns the dataset's files, sorted by path. The same spec always yields the same files.
func (s datasetSpec) generate() ([]file, error) {
	if s.Files <= 0 || s.Large < 0 || s.Large > s.Files || s.MinImage <= 0 || s.MaxImage < s.MinImage {
		return nil, fmt.Errorf("invalid dataset spec %+v", s)
	}
	r := rand.New(rand.NewPCG(s.Seed, 0x5eed))
	names := make(map[string]bool, s.Files)
	files := make([]file, 0, s.Files)
	name := func(i int, exts []string, large bool) string {
		for {
			year := 2015 + r.IntN(12)
			month := 1 + r.IntN(12)
			ext := exts[r.IntN(len(exts))]
			var base string
			if large {
				base = fmt.Sprintf("media-%05d%s", i, ext)
			} else {
				base = fmt.Sprintf("%s-%05d%s%s", slugs[r.IntN(len(slugs))], i, thumbs[r.IntN(len(thumbs))], ext)
			}
			rel := fmt.Sprintf("uploads/%04d/%02d/%s", year, month, base)
			if !names[rel] {
				names[rel] = true
				return rel
			}
		}
	}
	lo, hi := math.Log(float64(s.MinImage)), math.Log(float64(s.MaxImage))
	var small int64
	for i := range s.Files - s.Large {
		size := int64(math.Exp(lo + r.Float64()*(hi-lo)))
		small += size
		files = append(files, file{Rel: name(i, imageExts, false), Size: size})
	}
	if s.Large > 0 {
		// Spread what is left of the byte budget over the large files, each within its bounds.
		per := max(s.MinLarge, min(s.MaxLarge, (s.TotalBytes-small)/int64(s.Large)))
		spread := min(per-s.MinLarge, s.MaxLarge-per)
		for i := range s.Large {
			size := per
			if spread > 0 {
				size += r.Int64N(2*spread+1) - spread
			}
			files = append(files, file{Rel: name(s.Files+i, largeExts, true), Size: size})
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Rel < files[j].Rel })
	return files, nil
}

func totalBytes(files []file) int64 {
	var n int64
	for _, f := range files {
		n += f.Size
	}
	return n
}

// writeFiles writes the files under dir with incompressible pseudo-random content (like JPEG or MP4).
func writeFiles(dir string, files []file, seed uint64) error {
	src := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24)})
	var buf []byte
	for _, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(f.Rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("creating the dataset: %w", err)
		}
		if int64(cap(buf)) < f.Size {
			buf = make([]byte, f.Size)
		}
		b := buf[:f.Size]
		_, _ = src.Read(b) // ChaCha8.Read never fails
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return fmt.Errorf("creating the dataset: %w", err)
		}
	}
	return nil
}

// verifyDir checks that dir holds exactly the files, with their sizes, and nothing else.
func verifyDir(dir string, files []file) error {
	want := make(map[string]int64, len(files))
	for _, f := range files {
		want[f.Rel] = f.Size
	}
	var problems []string
	seen := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		size, ok := want[rel]
		switch {
		case !ok:
			problems = append(problems, "unexpected "+rel)
		case !info.Mode().IsRegular():
			problems = append(problems, "not a regular file: "+rel)
		case info.Size() != size:
			problems = append(problems, fmt.Sprintf("%s: %d bytes, want %d", rel, info.Size(), size))
		default:
			seen++
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("walking %s: %w", dir, err)
	}
	if missing := len(files) - seen; missing > 0 && len(problems) < 10 {
		problems = append(problems, fmt.Sprintf("%d files missing or wrong", missing))
	}
	if len(problems) > 0 {
		if len(problems) > 10 {
			problems = append(problems[:10], fmt.Sprintf("... %d more", len(problems)-10))
		}
		return errors.New(dir + ": " + strings.Join(problems, "; "))
	}
	return nil
}

// verifyObjects checks that the objects under prefix are exactly the files, with their sizes.
func verifyObjects(objs []harness.Object, prefix string, files []file) error {
	got := make(map[string]int64, len(objs))
	for _, o := range objs {
		got[strings.TrimPrefix(o.Name, prefix+"/")] = o.Size
	}
	var problems []string
	for _, f := range files {
		size, ok := got[f.Rel]
		switch {
		case !ok:
			problems = append(problems, "missing "+path.Join(prefix, f.Rel))
		case size != f.Size:
			problems = append(problems, fmt.Sprintf("%s: %d bytes, want %d", f.Rel, size, f.Size))
		}
		delete(got, f.Rel)
	}
	for name := range got {
		problems = append(problems, "unexpected "+name)
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		if len(problems) > 10 {
			problems = append(problems[:10], fmt.Sprintf("... %d more", len(problems)-10))
		}
		return errors.New("bucket: " + strings.Join(problems, "; "))
	}
	return nil
}
