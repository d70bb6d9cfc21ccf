package streaming

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/remotecommand"
	"k8s.io/streaming/pkg/httpstream"
	"k8s.io/streaming/pkg/httpstream/spdy"
	"k8s.io/streaming/pkg/httpstream/wsstream"

	"github.com/berthdev/berth/agent/runtime"
)

// The server side of Kubernetes' remotecommand protocol, as kubelet serves it: a
// websocket with numbered channels (v5 adds closing stdin), or SPDY with one stream
// per channel named by a streamType header. Both end with a metav1.Status on the
// error channel, which carries a non-zero exit code as a cause.

// Timeouts of a session.
const (
	// streamCreationTimeout bounds the wait for a SPDY client's streams.
	streamCreationTimeout = remotecommand.DefaultStreamCreationTimeout
	// idleTimeout ends a session whose connection carried nothing for this long
	// (kubelet's streaming-connection-idle-timeout default).
	idleTimeout = 4 * time.Hour
	// pingPeriod keeps SPDY connections through idle-closing proxies.
	pingPeriod = 5 * time.Second
)

// session is an open exec's streams, whichever protocol carries them.
type session struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	resize         <-chan runtime.TerminalSize
	// writeStatus sends the outcome on the error channel.
	writeStatus func(*metav1.Status) error
	// done is closed when the client's connection ends: the command is then killed.
	// net/http does not promise that a hijacked connection's end ends the request's
	// context (today it does), so the protocol's own signal is watched as well.
	done  <-chan struct{}
	close func()
}

// openSession upgrades the connection and returns the session, or writes an HTTP
// error and returns an error when the client speaks neither protocol.
func openSession(w http.ResponseWriter, req *http.Request, r execRequest) (*session, error) {
	if wsstream.IsWebSocketRequest(req) {
		return openWebSocket(w, req, r)
	}
	return openSPDY(w, req, r)
}

// Websocket channel numbers.
const (
	chanStdin = iota
	chanStdout
	chanStderr
	chanError
	chanResize
)

func openWebSocket(w http.ResponseWriter, req *http.Request, r execRequest) (*session, error) {
	// The resize channel is read even without a terminal: it ends when the
	// connection does, which is how the session learns the client went away.
	channels := []wsstream.ChannelType{
		chanStdin: channelIf(r.stdin, wsstream.ReadChannel), chanStdout: channelIf(r.stdout, wsstream.WriteChannel),
		chanStderr: channelIf(r.stderr, wsstream.WriteChannel), chanError: wsstream.WriteChannel,
		chanResize: wsstream.ReadChannel,
	}
	conn := wsstream.NewConn(map[string]wsstream.ChannelProtocolConfig{
		remotecommand.StreamProtocolV5Name: {Binary: true, Channels: channels},
		remotecommand.StreamProtocolV4Name: {Binary: true, Channels: channels},
	})
	conn.SetIdleTimeout(idleTimeout)
	_, streams, err := conn.Open(w, req)
	if err != nil {
		return nil, fmt.Errorf("upgrading to a websocket: %w", err)
	}
	// An empty frame on the first writable channel tells the client the command is
	// about to start (kubelet does the same).
	switch {
	case r.stdout:
		_, _ = streams[chanStdout].Write(nil)
	case r.stderr:
		_, _ = streams[chanStderr].Write(nil)
	default:
		_, _ = streams[chanError].Write(nil)
	}
	stop := make(chan struct{})
	sizes, done := decodeSizes(streams[chanResize], stop)
	s := &session{writeStatus: statusWriter(streams[chanError]), done: done, close: func() { close(stop); _ = conn.Close() }}
	if r.stdin {
		s.stdin = streams[chanStdin]
	}
	if r.stdout {
		s.stdout = streams[chanStdout]
	}
	if r.stderr {
		s.stderr = streams[chanStderr]
	}
	if r.tty {
		s.resize = sizes
	}
	return s, nil
}

func channelIf(on bool, t wsstream.ChannelType) wsstream.ChannelType {
	if on {
		return t
	}
	return wsstream.IgnoreChannel
}

// SPDY stream types (the streamType header of each stream).
const (
	streamTypeHeader = "streamType"
	streamError      = "error"
	streamStdin      = "stdin"
	streamStdout     = "stdout"
	streamStderr     = "stderr"
	streamResize     = "resize"
)

type spdyStream struct {
	stream    httpstream.Stream
	replySent <-chan struct{}
}

func openSPDY(w http.ResponseWriter, req *http.Request, r execRequest) (*session, error) {
	if _, err := httpstream.Handshake(req, w, []string{remotecommand.StreamProtocolV4Name}); err != nil {
		return nil, fmt.Errorf("negotiating a stream protocol (this server speaks %s): %w", remotecommand.StreamProtocolV4Name, err)
	}
	created := make(chan spdyStream)
	conn := spdy.NewResponseUpgraderWithPings(pingPeriod).UpgradeResponse(w, req, func(s httpstream.Stream, replySent <-chan struct{}) error {
		created <- spdyStream{stream: s, replySent: replySent}
		return nil
	})
	if conn == nil {
		return nil, errors.New("upgrading to SPDY failed")
	}
	conn.SetIdleTimeout(idleTimeout)
	streams, err := awaitStreams(created, expectedStreams(r), time.After(streamCreationTimeout))
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	errStream, ok := streams[streamError]
	if !ok {
		_ = conn.Close()
		return nil, errors.New("the client opened no error stream")
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		select {
		case <-conn.CloseChan():
			close(done)
		case <-stop:
		}
	}()
	s := &session{writeStatus: statusWriter(errStream), done: done, close: func() { close(stop); _ = conn.Close() }}
	if st, ok := streams[streamStdin]; ok {
		s.stdin = st
	}
	if st, ok := streams[streamStdout]; ok {
		s.stdout = st
	}
	if st, ok := streams[streamStderr]; ok {
		s.stderr = st
	}
	if st, ok := streams[streamResize]; ok {
		s.resize, _ = decodeSizes(st, stop)
	}
	return s, nil
}

// expectedStreams is how many streams a v4 client opens for r: error, then stdin,
// stdout, stderr (not with a terminal) and resize (with one) as asked.
func expectedStreams(r execRequest) int {
	n := 1
	for _, on := range []bool{r.stdin, r.stdout, r.stderr && !r.tty, r.tty} {
		if on {
			n++
		}
	}
	return n
}

// awaitStreams collects the client's streams by type until n have come and their
// replies are sent.
func awaitStreams(created <-chan spdyStream, n int, timeout <-chan time.Time) (map[string]httpstream.Stream, error) {
	streams := make(map[string]httpstream.Stream, n)
	var replies []<-chan struct{}
	for len(replies) < n {
		select {
		case s := <-created:
			typ := s.stream.Headers().Get(streamTypeHeader)
			switch typ {
			case streamError, streamStdin, streamStdout, streamStderr, streamResize:
				streams[typ] = s.stream
			default:
				return nil, fmt.Errorf("unexpected stream type %q", typ)
			}
			replies = append(replies, s.replySent)
		case <-timeout:
			return nil, fmt.Errorf("timed out waiting for the client's %d streams", n)
		}
	}
	for _, r := range replies {
		select {
		case <-r:
		case <-timeout:
			return nil, errors.New("timed out sending the stream replies")
		}
	}
	return streams, nil
}

// decodeSizes reads the terminal sizes the client sends, as JSON objects, until the
// stream ends (done is then closed) or stop is closed. Sizes nobody takes are
// dropped for newer ones.
func decodeSizes(r io.Reader, stop <-chan struct{}) (<-chan runtime.TerminalSize, <-chan struct{}) {
	sizes := make(chan runtime.TerminalSize, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(sizes)
		dec := json.NewDecoder(r)
		for {
			var sz struct{ Width, Height uint16 }
			if err := dec.Decode(&sz); err != nil {
				return
			}
			select {
			case <-sizes: // an older size not taken yet
			default:
			}
			select {
			case sizes <- runtime.TerminalSize{Width: sz.Width, Height: sz.Height}:
			case <-stop:
				return
			}
		}
	}()
	return sizes, done
}

// statusWriter writes a metav1.Status as JSON on the error stream (v4 and v5).
func statusWriter(w io.Writer) func(*metav1.Status) error {
	return func(st *metav1.Status) error {
		data, err := json.Marshal(st)
		if err != nil {
			return err
		}
		_, err = w.Write(data)
		return err
	}
}

// exitStatus is how the protocol reports a command's end: Success for 0, else a
// NonZeroExitCode failure with the code as its cause, which client-go turns into
// an exec.CodeExitError.
func exitStatus(code int) *metav1.Status {
	if code == 0 {
		return &metav1.Status{Status: metav1.StatusSuccess}
	}
	return &metav1.Status{
		Status:  metav1.StatusFailure,
		Reason:  remotecommand.NonZeroExitCodeReason,
		Message: fmt.Sprintf("command terminated with non-zero exit code: %d", code),
		Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{
			{Type: remotecommand.ExitCodeCauseType, Message: strconv.Itoa(code)},
		}},
	}
}

// failureStatus reports an exec that could not run.
func failureStatus(err error) *metav1.Status {
	return &metav1.Status{Status: metav1.StatusFailure, Message: err.Error()}
}
