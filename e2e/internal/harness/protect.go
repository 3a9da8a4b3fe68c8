package harness

import (
	"context"
	"fmt"
	"runtime/debug"
)

// Protect runs step and turns a panic in it into an error (with the stack), returning ctx as it was given.
// An e2e-framework setup step that panics loses the context the steps before it built, the cluster's handle
// among it: Finish then can neither export the cluster's logs nor delete it ("context cluster is nil").
func Protect(ctx context.Context, step func(context.Context) (context.Context, error)) (out context.Context, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = ctx, fmt.Errorf("panic: %v\n%s", r, debug.Stack())
		}
	}()
	return step(ctx)
}
