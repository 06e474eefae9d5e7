package bus_test

import (
	"context"
	"strings"
	"testing"

	"github.com/myriad-ai/myriad/bus"
	"github.com/myriad-ai/myriad/bus/bustest"
)

func TestDataDirectoryIsExclusive(t *testing.T) {
	b, dir := bustest.Open(t)
	_, err := bus.Open(context.Background(), bus.Options{DataDir: dir})
	if err == nil || !strings.Contains(err.Error(), "in use by another myriad process") {
		t.Fatalf("second open: %v", err)
	}
	b.Close()
	again, err := bus.Open(context.Background(), bus.Options{DataDir: dir})
	if err != nil {
		t.Fatalf("open after close: %v", err)
	}
	again.Close()
}

func TestEmbeddedNeedsADataDirectory(t *testing.T) {
	if _, err := bus.Open(context.Background(), bus.Options{}); err == nil || !strings.Contains(err.Error(), "--data") {
		t.Fatalf("got %v", err)
	}
}
