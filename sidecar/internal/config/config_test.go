package config

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/filesync/filesync/sidecar/internal/notify/topic"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(t *testing.T, c Config)
		wantErr string // substring; "" = success
	}{
		{name: "defaults", args: []string{"--dir", dir, "--remote", "gs://bkt/p"}, check: func(t *testing.T, c Config) {
			if c.PollInterval != 2*time.Second || c.RescanInterval != 5*time.Minute || c.Settle != 500*time.Millisecond ||
				!c.Delete || c.MaxDelete != 50 || c.Transfers != 8 || c.RestoreTransfers != 64 || c.DeleteWindow != time.Hour || c.Listen != ":8090" ||
				c.ShutdownTimeout != 25*time.Second || c.LogFormat != "json" || c.LogLevel != "info" ||
				c.Remote.Bucket != "bkt" || c.Remote.Prefix != "p" || c.Notifications != (topic.Name{}) ||
				c.ReconcileInterval != 10*time.Minute {
				t.Fatalf("defaults: %+v", c)
			}
		}},
		{name: "every flag has an env twin", env: map[string]string{
			"FILESYNC_DIR": dir, "FILESYNC_REMOTE": "gs://bk2", "FILESYNC_ONCE": "true", "FILESYNC_DRY_RUN": "true",
			"FILESYNC_POLL_INTERVAL": "3s", "FILESYNC_RESCAN_INTERVAL": "1m", "FILESYNC_SETTLE": "1s",
			"FILESYNC_EXCLUDE": "cache/**, *.tmp", "FILESYNC_DELETE": "false", "FILESYNC_MAX_DELETE": "10",
			"FILESYNC_TRANSFERS": "4", "FILESYNC_STATE_DIR": dir, "FILESYNC_LISTEN": "127.0.0.1:0",
			"FILESYNC_SHUTDOWN_TIMEOUT": "5s", "FILESYNC_LOG_FORMAT": "text", "FILESYNC_LOG_LEVEL": "debug",
			"FILESYNC_MAX_DELETE_WINDOW": "10m", "FILESYNC_PROGRESS_INTERVAL": "1s", "FILESYNC_RESTORE_TRANSFERS": "48",
			"FILESYNC_NOTIFICATIONS": "projects/my-project/topics/media", "FILESYNC_RECONCILE_INTERVAL": "30m",
		}, check: func(t *testing.T, c Config) {
			want := Config{Dir: dir, Once: true, DryRun: true, PollInterval: 3 * time.Second, RescanInterval: time.Minute,
				Settle: time.Second, Excludes: []string{"cache/**", "*.tmp"}, Delete: false, MaxDelete: 10, Transfers: 4,
				StateDir: dir, Listen: "127.0.0.1:0", ShutdownTimeout: 5 * time.Second, LogFormat: "text", LogLevel: "debug",
				DeleteWindow: 10 * time.Minute, ProgressEvery: time.Second, RestoreTransfers: 48,
				Notifications: topic.Name{Project: "my-project", Topic: "media"}, ReconcileInterval: 30 * time.Minute}
			want.Remote = c.Remote
			if c.Remote.Bucket != "bk2" || strings.Join(c.Excludes, "|") != "cache/**|*.tmp" {
				t.Fatalf("remote/excludes: %+v", c)
			}
			c.Excludes, want.Excludes = nil, nil
			if !reflect.DeepEqual(c, want) {
				t.Fatalf("got %+v\nwant %+v", c, want)
			}
		}},
		{name: "flag wins over env", args: []string{"--dir", dir, "--transfers", "2"},
			env: map[string]string{"FILESYNC_REMOTE": "gs://bkt", "FILESYNC_TRANSFERS": "16"},
			check: func(t *testing.T, c Config) {
				if c.Transfers != 2 {
					t.Fatalf("transfers = %d", c.Transfers)
				}
			}},
		{name: "repeatable exclude", args: []string{"--dir", dir, "--remote", "gs://bkt", "--exclude", "a/**", "--exclude", "b"},
			check: func(t *testing.T, c Config) {
				if strings.Join(c.Excludes, ",") != "a/**,b" {
					t.Fatalf("excludes = %v", c.Excludes)
				}
			}},
		{name: "missing dir", args: []string{"--remote", "gs://bkt"}, wantErr: "--dir (or FILESYNC_DIR) is required"},
		{name: "missing remote", args: []string{"--dir", dir}, wantErr: "--remote (or FILESYNC_REMOTE) is required"},
		{name: "dir does not exist", args: []string{"--dir", dir + "/nope", "--remote", "gs://bkt"}, wantErr: "--dir " + dir + "/nope"},
		{name: "bad remote", args: []string{"--dir", dir, "--remote", "s3://bkt"}, wantErr: "--remote"},
		{name: "bad duration flag", args: []string{"--dir", dir, "--remote", "gs://bkt", "--poll-interval", "fast"}, wantErr: "poll-interval"},
		{name: "bad duration env", args: []string{"--dir", dir, "--remote", "gs://bkt"},
			env: map[string]string{"FILESYNC_SETTLE": "soon"}, wantErr: "FILESYNC_SETTLE"},
		{name: "zero poll", args: []string{"--dir", dir, "--remote", "gs://bkt", "--poll-interval", "0s"}, wantErr: "--poll-interval 0s"},
		{name: "max-delete range", args: []string{"--dir", dir, "--remote", "gs://bkt", "--max-delete", "101"}, wantErr: "--max-delete 101"},
		{name: "restore-transfers range", args: []string{"--dir", dir, "--remote", "gs://bkt", "--restore-transfers", "0"}, wantErr: "--restore-transfers 0"},
		{name: "transfers range", args: []string{"--dir", dir, "--remote", "gs://bkt", "--transfers", "0"}, wantErr: "--transfers 0"},
		{name: "bad glob", args: []string{"--dir", dir, "--remote", "gs://bkt", "--exclude", "[x"}, wantErr: "--exclude"},
		{name: "bad log format", args: []string{"--dir", dir, "--remote", "gs://bkt", "--log-format", "xml"}, wantErr: "--log-format"},
		{name: "bad log level env", args: []string{"--dir", dir, "--remote", "gs://bkt"},
			env: map[string]string{"FILESYNC_LOG_LEVEL": "loud"}, wantErr: "--log-level"},
		{name: "unknown flag", args: []string{"--dri", dir}, wantErr: "-dri"},
		{name: "stray argument", args: []string{"--dir", dir, "--remote", "gs://bkt", "extra"}, wantErr: `unexpected argument "extra"`},
		{name: "malformed listen", args: []string{"--dir", dir, "--remote", "gs://bkt", "--listen", "bogus"}, wantErr: `--listen "bogus"`},
		{name: "listen port out of range", args: []string{"--dir", dir, "--remote", "gs://bkt", "--listen", ":99999"}, wantErr: "--listen"},
		{name: "zero delete window", args: []string{"--dir", dir, "--remote", "gs://bkt", "--max-delete-window", "0s"}, wantErr: "--max-delete-window 0s"},
		{name: "notifications", args: []string{"--dir", dir, "--remote", "gs://bkt/p", "--notifications", "projects/my-project/topics/media"},
			check: func(t *testing.T, c Config) {
				if c.Notifications.String() != "projects/my-project/topics/media" || c.ReconcileInterval != 10*time.Minute {
					t.Fatalf("notifications %v, reconcile interval %v", c.Notifications, c.ReconcileInterval)
				}
			}},
		{name: "malformed notifications", args: []string{"--dir", dir, "--remote", "gs://bkt", "--notifications", "media-topic"},
			wantErr: `--notifications "media-topic": want projects/PROJECT/topics/TOPIC`},
		{name: "malformed notifications env", args: []string{"--dir", dir, "--remote", "gs://bkt"},
			env: map[string]string{"FILESYNC_NOTIFICATIONS": "projects/my-project/topics/goog"}, wantErr: "--notifications"},
		{name: "reconcile without notifications", args: []string{"--dir", dir, "--remote", "gs://bkt", "--reconcile-interval", "1m"},
			wantErr: "--reconcile-interval needs --notifications"},
		{name: "zero reconcile", args: []string{"--dir", dir, "--remote", "gs://bkt", "--notifications", "projects/my-project/topics/media",
			"--reconcile-interval", "0s"}, wantErr: "--reconcile-interval 0s"},
		{name: "bad state dir", args: []string{"--dir", dir, "--remote", "gs://bkt", "--state-dir", dir + "/x"}, wantErr: "--state-dir"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(tc.args, env(tc.env), io.Discard)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				tc.check(t, c)
				return
			}
			if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want usage error containing %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("usage errors are one line: %q", err)
			}
		})
	}
}

func TestUnknownEnv(t *testing.T) {
	got := UnknownEnv([]string{"FILESYNC_DIR=/x", "FILESYNC_POLL_INTERVALL=1s", "FILESYNC_SERVICE_HOST=10.0.0.1",
		"FILESYNC_PORT_8090_TCP=tcp://x", "FILESYNC_PORT=tcp://x", "HOME=/root", "FILESYNC_MAX_DELETE_WINDOW=1h"})
	if strings.Join(got, ",") != "FILESYNC_POLL_INTERVALL" {
		t.Fatalf("UnknownEnv = %v", got)
	}
}

func TestHelp(t *testing.T) {
	var b strings.Builder
	_, err := Load([]string{"--help"}, env(nil), &b)
	if !errors.Is(err, ErrHelp) || !strings.Contains(b.String(), "FILESYNC_POLL_INTERVAL") {
		t.Fatalf("help: %v\n%s", err, b.String())
	}
}
