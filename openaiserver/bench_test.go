package openaiserver_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/run"
)

// The added cost of a turn through /v1/chat/completions, against the
// same turn submitted to the engine directly: the greeter's scripted
// model answers at once, so what is measured is Myriad and the protocol,
// on durable (file) storage, over loopback HTTP with a plain client.
//
//	go test -run '^$' -bench . -benchtime 300x -count 7 ./openaiserver/
func BenchmarkTurn(b *testing.B) {
	for _, instance := range []bool{false, true} {
		b.Run(fmt.Sprintf("path=engine/instance=%v", instance), func(b *testing.B) {
			fx := newFixture(b)
			ctx := context.Background()
			n := 0
			for b.Loop() {
				n++
				sub := engine.SubmitRequest{Agent: "greeter", Input: "Ada"}
				if instance {
					sub.Instance = fmt.Sprintf("bench-%d", n)
				}
				rec, _, err := fx.rt.Submit(ctx, sub)
				if err != nil {
					b.Fatal(err)
				}
				if rec, err = fx.rt.Wait(ctx, rec.ID); err != nil || rec.Status != run.StatusCompleted {
					b.Fatalf("%+v %v", rec, err)
				}
			}
		})
	}
	for _, tc := range []struct{ stream, instance bool }{{false, false}, {true, false}, {false, true}} {
		b.Run(fmt.Sprintf("path=chat/stream=%v/instance=%v", tc.stream, tc.instance), func(b *testing.B) {
			fx := newFixture(b)
			n := 0
			for b.Loop() {
				n++
				user := ""
				if tc.instance {
					user = fmt.Sprintf(`"user":"bench-%d",`, n)
				}
				body := fmt.Sprintf(`{"model":"greeter",%s"stream":%v,"messages":[{"role":"user","content":"Ada"}]}`, user, tc.stream)
				req, _ := http.NewRequest("POST", fx.url+"/v1/chat/completions", bytes.NewReader([]byte(body)))
				req.Header.Set("Authorization", "Bearer secret")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				data, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || !bytes.Contains(data, []byte("hello Ada")) {
					b.Fatalf("%d %s", resp.StatusCode, data)
				}
			}
		})
	}
}
