package cli

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// logOptions are a command's --log-level and --log-format flags.
type logOptions struct{ level, format *string }

func logFlags(fs *flag.FlagSet, level string) logOptions {
	return logOptions{
		level:  fs.String("log-level", level, "debug, info, warn or error (on stderr)"),
		format: fs.String("log-format", "text", "text (key=value) or json (one object a line)"),
	}
}

// logger makes the logger the flags ask for, writing to w.
func (o logOptions) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(*o.level)); err != nil {
		return nil, &exitError{code: 2, err: fmt.Errorf("--log-level: unknown level %q (known: debug, info, warn, error)", *o.level)}
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(*o.format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, &exitError{code: 2, err: fmt.Errorf("--log-format: unknown format %q (known: text, json)", *o.format)}
}
