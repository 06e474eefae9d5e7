package main

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"
)

func TestLibraryExample(t *testing.T) {
	r, w, _ := os.Pipe()
	stdout := os.Stdout
	os.Stdout = w
	err := count(context.Background(), nil)
	os.Stdout = stdout
	w.Close()
	out, _ := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != "That text has 6 words." {
		t.Fatalf("output %q", got)
	}
}
