// Package logbuf batches a process log's lines into fewer writes. The
// gateway writes one info line per request; written one by one, each is a
// system call on the request path. A Writer keeps info lines in memory and
// writes them together, at least every flush interval, when its buffer
// fills, and at once when a line is a warning or worse — so what an
// operator needs to see first is never held back, and lines keep their
// order.
//
//	w := logbuf.New(os.Stderr, logbuf.Options{})
//	defer w.Close()        // writes what is buffered
//	logger.Out = w
//	logrus.RegisterExitHandler(func() { w.Flush() }) // before logrus.Fatal exits
//
// A crash that is not a logrus.Fatal can lose the info lines of the last
// flush interval (default 200 ms); warnings and errors are written before
// Write returns. The audit log, not this log, is the gateway's record.
package logbuf
