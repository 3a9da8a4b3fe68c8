package config

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/filesync/filesync/sidecar/internal/notify/topic"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "token")
	if err := os.WriteFile(secret, []byte("0123456789abcdef0123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	short := filepath.Join(dir, "short")
	if err := os.WriteFile(short, []byte("abc"), 0o600); err != nil {
		t.Fatal(err)
	}
	rt := func(extra ...string) []string {
		return append([]string{"--dir", dir, "--remote", "gs://bkt"}, extra...)
	}
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
				c.ReconcileInterval != 10*time.Minute || c.MaxConflicts != 10 {
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
			"FILESYNC_READ_THROUGH": "127.0.0.1:8091", "FILESYNC_READ_THROUGH_INCLUDE": "uploads/**, media/**",
			"FILESYNC_PEERS": "wordpress-peers", "FILESYNC_PEER_LISTEN": ":9000", "FILESYNC_PEER_SECRET_FILE": secret,
			"FILESYNC_NO_EXEC": "uploads/**, media/", "FILESYNC_MAX_CONFLICTS": "3",
			"FILESYNC_ON_CHANGE": "http://purger.cdn.svc:8080/hook, https://hooks.example.com/filesync?token=x",
		}, check: func(t *testing.T, c Config) {
			want := Config{Dir: dir, Once: true, DryRun: true, PollInterval: 3 * time.Second, RescanInterval: time.Minute,
				Settle: time.Second, Excludes: []string{"cache/**", "*.tmp"}, Delete: false, MaxDelete: 10, Transfers: 4,
				StateDir: dir, Listen: "127.0.0.1:0", ShutdownTimeout: 5 * time.Second, LogFormat: "text", LogLevel: "debug",
				DeleteWindow: 10 * time.Minute, ProgressEvery: time.Second, RestoreTransfers: 48,
				Notifications: topic.Name{Project: "my-project", Topic: "media"}, ReconcileInterval: 30 * time.Minute,

				ReadThrough: "127.0.0.1:8091", ReadThroughIncludes: []string{"uploads/**", "media/**"}, Peers: "wordpress-peers",
				PeerListen: ":9000", PeerSecretFile: secret, PeerSecret: "0123456789abcdef0123", NoExec: []string{"uploads/**", "media/"}, MaxConflicts: 3,
				OnChange: []string{"http://purger.cdn.svc:8080/hook", "https://hooks.example.com/filesync?token=x"}}
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
		{name: "repeatable no-exec", args: rt("--no-exec", "uploads/**", "--no-exec", "media"),
			check: func(t *testing.T, c Config) {
				if strings.Join(c.NoExec, ",") != "uploads/**,media" {
					t.Fatalf("no-exec = %v", c.NoExec)
				}
			}},
		{name: "no-exec off by default", args: rt(), check: func(t *testing.T, c Config) {
			if len(c.NoExec) != 0 {
				t.Fatalf("no-exec = %v", c.NoExec)
			}
		}},
		{name: "repeatable tree", args: rt("--tree", "plugins/*/", "--tree", "themes/*/"),
			check: func(t *testing.T, c Config) {
				if strings.Join(c.Trees, ",") != "plugins/*/,themes/*/" {
					t.Fatalf("trees = %v", c.Trees)
				}
			}},
		{name: "bad tree glob", args: rt("--tree", "plugins/[x"), wantErr: "--tree: glob \"plugins/[x\""},
		{name: "bad no-exec glob", args: rt("--no-exec", "uploads/[x"), wantErr: "--no-exec: glob \"uploads/[x\""},
		{name: "bad no-exec glob env", args: rt(), env: map[string]string{"FILESYNC_NO_EXEC": "uploads/**,/"}, wantErr: "--no-exec"},
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
		{name: "max-conflicts range", args: []string{"--dir", dir, "--remote", "gs://bkt", "--max-conflicts", "-1"}, wantErr: "--max-conflicts -1"},
		{name: "max-conflicts 0 keeps all", args: []string{"--dir", dir, "--remote", "gs://bkt", "--max-conflicts", "0"}, check: func(t *testing.T, c Config) {
			if c.MaxConflicts != 0 {
				t.Fatalf("max-conflicts = %d", c.MaxConflicts)
			}
		}},
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
		{name: "read-through on loopback", args: rt("--read-through", "127.0.0.1:8091", "--read-through-include", "uploads/**",
			"--read-through-include", "media/**"), check: func(t *testing.T, c Config) {
			if c.ReadThrough != "127.0.0.1:8091" || strings.Join(c.ReadThroughIncludes, ",") != "uploads/**,media/**" || c.Peers != "" {
				t.Fatalf("%+v", c)
			}
		}},
		{name: "read-through on ::1 and localhost", args: rt("--read-through", "[::1]:8091", "--read-through-include", "x/**"),
			check: func(t *testing.T, c Config) {}},
		{name: "read-through on all interfaces", args: rt("--read-through", ":8091", "--read-through-include", "uploads/**"),
			wantErr: `--read-through ":8091": must be a loopback address`},
		{name: "read-through on the pod IP", args: rt("--read-through", "10.0.0.7:8091", "--read-through-include", "uploads/**"),
			wantErr: `--read-through "10.0.0.7:8091": must be a loopback address`},
		{name: "read-through on a name", args: rt("--read-through", "wordpress:8091", "--read-through-include", "uploads/**"),
			wantErr: "--read-through"},
		{name: "read-through without include", args: rt("--read-through", "127.0.0.1:8091"), wantErr: "--read-through-include is required"},
		{name: "include without read-through", args: rt("--read-through-include", "uploads/**"), wantErr: "--read-through-include needs --read-through"},
		{name: "peers without read-through", args: rt("--peers", "wp-peers"), wantErr: "--peers needs --read-through"},
		{name: "peers without secret", args: rt("--read-through", "127.0.0.1:8091", "--read-through-include", "u/**", "--peers", "wp-peers"),
			wantErr: "--peer-secret-file is required"},
		{name: "peers with a short secret", args: rt("--read-through", "127.0.0.1:8091", "--read-through-include", "u/**", "--peers", "wp-peers",
			"--peer-secret-file", short), wantErr: "at least 16"},
		{name: "peers with a missing secret file", args: rt("--read-through", "127.0.0.1:8091", "--read-through-include", "u/**", "--peers", "wp-peers",
			"--peer-secret-file", dir+"/none"), wantErr: "--peer-secret-file"},
		{name: "peers on port 0", args: rt("--read-through", "127.0.0.1:8091", "--read-through-include", "u/**", "--peers", "wp-peers",
			"--peer-secret-file", secret, "--peer-listen", ":0"), wantErr: "--peer-listen"},
		{name: "peers", args: rt("--read-through", "127.0.0.1:8091", "--read-through-include", "u/**", "--peers", "wp-peers.ns.svc.cluster.local",
			"--peer-secret-file", secret), check: func(t *testing.T, c Config) {
			if c.PeerSecret != "0123456789abcdef0123" || c.PeerListen != ":8092" {
				t.Fatalf("%+v", c)
			}
		}},
		{name: "repeatable on-change", args: rt("--on-change", "http://purger:8080/hook", "--on-change", "https://[::1]/x"),
			check: func(t *testing.T, c Config) {
				if strings.Join(c.OnChange, " ") != "http://purger:8080/hook https://[::1]/x" {
					t.Fatalf("on-change = %v", c.OnChange)
				}
			}},
		{name: "on-change off by default", args: rt(), check: func(t *testing.T, c Config) {
			if len(c.OnChange) != 0 {
				t.Fatalf("on-change = %v", c.OnChange)
			}
		}},
		{name: "on-change not http", args: rt("--on-change", "ftp://purger/hook"),
			wantErr: `--on-change "ftp://purger/hook": want an http:// or https:// URL with a host`},
		{name: "on-change without scheme", args: rt("--on-change", "purger:8080/hook"), wantErr: "--on-change"},
		{name: "on-change without host", args: rt("--on-change", "http:///hook"),
			wantErr: `--on-change "http:///hook": want an http:// or https:// URL with a host`},
		{name: "on-change unparsable", args: rt("--on-change", "http://purger/%zz"), wantErr: `--on-change "http://purger/%zz"`},
		{name: "on-change env, one bad", args: rt(), env: map[string]string{"FILESYNC_ON_CHANGE": "http://a/hook,b/hook"},
			wantErr: `--on-change "b/hook"`},
		{name: "lazy and cache size", args: rt("--lazy", "uploads/", "--cache-size", "20GiB"), check: func(t *testing.T, c Config) {
			if strings.Join(c.Lazy, ",") != "uploads/" || c.CacheSize != 20<<30 {
				t.Fatalf("lazy %v, cache size %d", c.Lazy, c.CacheSize)
			}
		}},
		{name: "cache size units", args: rt("--lazy", "uploads/"), env: map[string]string{"FILESYNC_CACHE_SIZE": "1.5 MB"},
			check: func(t *testing.T, c Config) {
				if c.CacheSize != 1500000 {
					t.Fatalf("cache size %d", c.CacheSize)
				}
			}},
		{name: "cache size in bytes", args: rt("--lazy", "uploads/", "--cache-size", "52428800"), check: func(t *testing.T, c Config) {
			if c.CacheSize != 50<<20 {
				t.Fatalf("cache size %d", c.CacheSize)
			}
		}},
		{name: "cache size without lazy", args: rt("--cache-size", "50MiB"), wantErr: "--cache-size 50MiB: needs --lazy"},
		{name: "cache size unit unknown", args: rt("--lazy", "uploads/", "--cache-size", "20GB/s"), wantErr: "cache-size"},
		{name: "cache size negative", args: rt("--lazy", "uploads/", "--cache-size", "-1"), wantErr: "cache-size"},
		{name: "cache size not a number", args: rt("--lazy", "uploads/", "--cache-size", "lots"), wantErr: "cache-size"},
		{name: "lazy bad glob", args: rt("--lazy", "uploads/["), wantErr: "--lazy"},
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
