package a2aserver_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/a2aproject/a2a-go/a2a"

	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/run"
)

// The cost of running an agent over A2A, against submitting the same run
// to the runtime directly: a scripted model that answers at once, so what
// is measured is Myriad and the protocol, on durable (file) storage.
//
//	go test -run '^$' -bench . -benchtime 300x -count 7 ./a2aserver/

func BenchmarkDirect(b *testing.B) {
	for _, instance := range []bool{false, true} {
		b.Run(fmt.Sprintf("instance=%v", instance), func(b *testing.B) {
			rt, _ := newServer(b)
			ctx := context.Background()
			n := 0
			for b.Loop() {
				n++
				sub := engine.SubmitRequest{Agent: "greeter", Input: "Ada"}
				if instance {
					sub.Instance = fmt.Sprintf("bench-%d", n)
				}
				rec, _, err := rt.Submit(ctx, sub)
				if err != nil {
					b.Fatal(err)
				}
				if rec, err = rt.Wait(ctx, rec.ID); err != nil || rec.Status != run.StatusCompleted {
					b.Fatalf("%+v %v", rec, err)
				}
			}
		})
	}
}

func BenchmarkA2A(b *testing.B) {
	for _, streaming := range []bool{false, true} {
		b.Run(fmt.Sprintf("stream=%v", streaming), func(b *testing.B) {
			_, base := newServer(b)
			c, _ := client(b, base, "greeter")
			ctx := context.Background()
			for b.Loop() {
				params := &a2a.MessageSendParams{Message: a2a.NewMessage(a2a.MessageRoleUser, a2a.TextPart{Text: "Ada"})}
				state := a2a.TaskStateUnspecified
				if streaming {
					for ev, err := range c.SendStreamingMessage(ctx, params) {
						if err != nil {
							b.Fatal(err)
						}
						if st, ok := ev.(*a2a.TaskStatusUpdateEvent); ok && st.Final {
							state = st.Status.State
						}
					}
				} else {
					res, err := c.SendMessage(ctx, params)
					if err != nil {
						b.Fatal(err)
					}
					state = res.(*a2a.Task).Status.State
				}
				if state != a2a.TaskStateCompleted {
					b.Fatalf("ended %s", state)
				}
			}
		})
	}
}
