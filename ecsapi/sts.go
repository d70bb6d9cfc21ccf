package ecsapi

import (
	"encoding/xml"
	"net/http"
	"net/url"
	"strings"

	"github.com/go-logr/logr"

	"github.com/berthdev/berth/ecsapi/wire"
)

// STS's GetCallerIdentity is served on the same endpoint, so that tools which ask
// for the account before calling ECS (and `aws sts get-caller-identity`, the usual
// check that a profile works) work here. STS speaks the awsQuery protocol: a form
// POST with Action and Version, answered in XML.

func isSTS(r *http.Request) bool {
	return r.Header.Get("X-Amz-Target") == "" &&
		strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded")
}

type stsIdentity struct {
	XMLName xml.Name `xml:"https://sts.amazonaws.com/doc/2011-06-15/ GetCallerIdentityResponse"`
	Result  struct {
		Arn     string `xml:"Arn"`
		UserID  string `xml:"UserId"`
		Account string `xml:"Account"`
	} `xml:"GetCallerIdentityResult"`
	RequestID string `xml:"ResponseMetadata>RequestId"`
}

type stsError struct {
	XMLName xml.Name `xml:"https://sts.amazonaws.com/doc/2011-06-15/ ErrorResponse"`
	Error   struct {
		Type    string `xml:"Type"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	} `xml:"Error"`
	RequestID string `xml:"RequestId"`
}

func (s *Server) serveSTS(w http.ResponseWriter, r *http.Request, body []byte, requestID string, log logr.Logger) {
	if rec, ok := w.(*recorder); ok {
		rec.action = "sts:GetCallerIdentity"
	}
	form, err := url.ParseQuery(string(body))
	if err != nil || form.Get("Action") != "GetCallerIdentity" {
		writeSTSError(w, requestID, wire.Errorf("InvalidAction", "Berth serves only STS's GetCallerIdentity"))
		return
	}
	cred, err := s.authenticate(r, body, "sts")
	if err != nil {
		e := wire.ECS.AsError(err)
		log.Info("request refused", "action", "sts:GetCallerIdentity", "errorType", e.Type, "reason", e.Message, "remote", r.RemoteAddr)
		writeSTSError(w, requestID, e)
		return
	}
	arns := ARNs{Region: s.cfg.Region, Account: s.cfg.AccountID}
	out := stsIdentity{RequestID: requestID}
	out.Result.Arn = arns.User(cred.User)
	out.Result.UserID = cred.AccessKeyID
	if out.Result.UserID == "" {
		out.Result.UserID = cred.User
	}
	out.Result.Account = s.cfg.AccountID
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("x-amzn-RequestId", requestID)
	_ = xml.NewEncoder(w).Encode(out)
}

func writeSTSError(w http.ResponseWriter, requestID string, e *wire.Error) {
	var out stsError
	out.Error.Type, out.Error.Code, out.Error.Message = "Sender", e.Type, e.Message
	out.RequestID = requestID
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("x-amzn-RequestId", requestID)
	w.Header().Set("x-amzn-ErrorType", e.Type)
	w.WriteHeader(e.Status())
	_ = xml.NewEncoder(w).Encode(out)
}
