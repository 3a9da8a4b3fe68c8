package app

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"
)

func putObject(srv *fakestorage.Server, name, content string) {
	srv.CreateObject(fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: "media", Name: name}, Content: []byte(content)})
}

// TestConflictsListsTheCopies: `filesync conflicts` reads every copy's path, replica and time from its
// name, from the right (paths with dots, a path that extends another's name), shows a name it cannot read
// as it is, and leaves out everything outside the folder and the prefix.
func TestConflictsListsTheCopies(t *testing.T) {
	srv := newServer(t)
	putObject(srv, "p/.filesync/conflicts/uploads/a.v2.jpg.web-1.1764990000", "12345")
	putObject(srv, "p/.filesync/conflicts/uploads/a.v2.jpg.bak.web-0.1764990100", "1")
	putObject(srv, "p/.filesync/conflicts/uploads/a.v2.jpg.web-0.1764980000", "123")
	putObject(srv, "p/.filesync/conflicts/odd-name", "xy")
	putObject(srv, "p/uploads/a.v2.jpg", "live")
	putObject(srv, "other/.filesync/conflicts/x.jpg.web-0.1", "not this prefix")

	env, out, _ := envFor(srv, "conflicts", "--remote", "gs://media/p")
	if err := Run(context.Background(), env); err != nil {
		t.Fatal(err)
	}
	want := `PATH                  REPLICA  TIME                  SIZE  OBJECT
odd-name              -        -                     2     gs://media/p/.filesync/conflicts/odd-name
uploads/a.v2.jpg      web-0    2025-12-06T00:13:20Z  3     gs://media/p/.filesync/conflicts/uploads/a.v2.jpg.web-0.1764980000
uploads/a.v2.jpg      web-1    2025-12-06T03:00:00Z  5     gs://media/p/.filesync/conflicts/uploads/a.v2.jpg.web-1.1764990000
uploads/a.v2.jpg.bak  web-0    2025-12-06T03:01:40Z  1     gs://media/p/.filesync/conflicts/uploads/a.v2.jpg.bak.web-0.1764990100
`
	if out.String() != want {
		t.Fatalf("table:\n%s\nwant:\n%s", out, want)
	}

	env, out, _ = envFor(srv, "conflicts", "--format", "json")
	env.Getenv = func(k string) string { return map[string]string{"FILESYNC_REMOTE": "gs://media/p"}[k] }
	if err := Run(context.Background(), env); err != nil {
		t.Fatal(err)
	}
	var rows []conflictRow
	if err := json.Unmarshal(out.Bytes(), &rows); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	if len(rows) != 4 || rows[2] != (conflictRow{Path: "uploads/a.v2.jpg", Replica: "web-1", Time: time.Unix(1764990000, 0).UTC(),
		Size: 5, Object: "gs://media/p/.filesync/conflicts/uploads/a.v2.jpg.web-1.1764990000"}) {
		t.Fatalf("json rows: %+v", rows)
	}
	if !strings.Contains(out.String(), `"path": "odd-name",`) || strings.Contains(rows[0].Time.String(), "2025") {
		t.Fatalf("an unreadable name is listed without replica or time:\n%s", out)
	}
}

// TestConflictsQuotesControlCharacters: a name from the bucket cannot write escape sequences to the
// terminal or break the table.
func TestConflictsQuotesControlCharacters(t *testing.T) {
	srv := newServer(t)
	putObject(srv, ".filesync/conflicts/evil\x1b[2J\tname.jpg.web-0.5", "x")
	env, out, _ := envFor(srv, "conflicts", "--remote", "gs://media")
	if err := Run(context.Background(), env); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(out.String(), "\x1b") || !strings.Contains(out.String(), `"evil\x1b[2J\tname.jpg"`) {
		t.Fatalf("not quoted:\n%q", out)
	}
}

func TestConflictsExitCodes(t *testing.T) {
	srv := newServer(t)
	for _, c := range []struct {
		args []string
		code int
		want string // in stderr (exit != 0) or stdout (--help)
	}{
		{[]string{"conflicts"}, 2, "--remote (or FILESYNC_REMOTE) is required"},
		{[]string{"conflicts", "--remote", "gs://media", "--format", "yaml"}, 2, `--format "yaml"`},
		{[]string{"conflicts", "--remote", "gs://media", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"conflicts", "--remote", "s3://media"}, 2, "--remote"},
		{[]string{"conflicts", "--remote", "gs://no-such-bucket"}, 1, "no-such-bucket"},
		{[]string{"conflicts", "--help"}, 0, "Usage: filesync conflicts"},
		{[]string{"conflict", "--remote", "gs://media"}, 2, `unexpected argument "conflict"`},
		{[]string{"--remote", "gs://media", "conflicts"}, 2, `unexpected argument "conflicts"`},
	} {
		env, out, _ := envFor(srv, c.args...)
		var stderr bytes.Buffer
		code := ExitCode(Run(context.Background(), env), &stderr)
		text := stderr.String()
		if code == 0 {
			text = out.String()
		}
		if code != c.code || !strings.Contains(text, c.want) || (code != 0 && strings.Count(text, "\n") != 1) {
			t.Errorf("%q: exit %d, %q; want exit %d with %q on one line", c.args, code, text, c.code, c.want)
		}
	}
}
