// Package tools runs the other clients of a bucket against a fake-gcs-server: the emulator as a process
// (plain HTTP on 127.0.0.1) and rclone and gcloud storage pointed at it, each with a private configuration
// (never ~/.config). The bench (e2e/bench) times them against filesync; the interop lane (e2e/interop)
// checks what they and filesync make of each other's objects.
package tools
