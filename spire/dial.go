package spire

import (
	"fmt"
	"path/filepath"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Dial returns a client connection to a SPIRE server's admin API on the unix
// socket at path (the server's socket_path; spire-server's -socketPath). The
// socket's file permissions are its access control, so the connection has
// no TLS. Dial does not connect yet: the first call does. Close the
// connection when done.
func Dial(path string) (*grpc.ClientConn, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("spire: server socket %q: %w", path, err)
	}
	conn, err := grpc.NewClient("unix://"+abs, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("spire: server socket %s: %w", abs, err)
	}
	return conn, nil
}
