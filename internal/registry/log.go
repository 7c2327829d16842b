package registry

import (
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/sirupsen/logrus"
)

// The library logs through logrus's standard logger, at info for every
// request. berth logs with slog: its warnings and errors go to the
// manager's log, the rest nowhere. berth itself does not use logrus.

var (
	libLogOnce sync.Once
	libLog     atomic.Pointer[slog.Logger]
)

func quietLibraryLog(log *slog.Logger) {
	libLog.Store(log)
	libLogOnce.Do(func() {
		std := logrus.StandardLogger()
		std.SetOutput(io.Discard)
		std.SetLevel(logrus.WarnLevel)
		std.AddHook(slogHook{})
	})
}

type slogHook struct{}

func (slogHook) Levels() []logrus.Level {
	return []logrus.Level{logrus.PanicLevel, logrus.FatalLevel, logrus.ErrorLevel, logrus.WarnLevel}
}

func (slogHook) Fire(e *logrus.Entry) error {
	log := libLog.Load()
	if log == nil {
		return nil
	}
	// Every answer with an error is logged at error level, a HEAD of a
	// blob the registry lacks too (each docker push asks for every
	// layer); the client hears those. Only the library's own failures
	// belong in the manager's log.
	if e.Message == "response completed with error" && fmt.Sprint(e.Data["err.code"]) != "UNKNOWN" {
		return nil
	}
	level := slog.LevelWarn
	if e.Level <= logrus.ErrorLevel {
		level = slog.LevelError
	}
	args := []any{"component", "registry"}
	for _, k := range []string{"err.code", "err.message", "err.detail", "http.request.method", "http.request.uri", "vars.name"} {
		if v, ok := e.Data[k]; ok {
			args = append(args, k, v)
		}
	}
	log.Log(e.Context, level, e.Message, args...)
	return nil
}
