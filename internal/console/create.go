package console

// Creating a topic from the topics page (POST /topics), unless
// Config.ReadOnly. Cross-origin browser posts are refused
// (http.CrossOriginProtection), so another site cannot make a visitor's
// browser create topics; the Kafka listener itself is as open.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// TopicForm is the create-topic form as posted, and what went wrong.
type TopicForm struct {
	Name              string
	Partitions        string
	ReplicationFactor string
	Error             string
}

// topicName is Kafka's rule for topic names.
var topicName = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)

// parse checks the form: a legal name; partitions and replication
// factor positive numbers, or empty for the cluster's defaults (-1).
func (f TopicForm) parse() (name string, partitions int32, rf int16, err error) {
	name = strings.TrimSpace(f.Name)
	if !topicName.MatchString(name) || name == "." || name == ".." {
		return "", 0, 0, fmt.Errorf("topic name %q: use 1 to 249 letters, digits, '.', '_' or '-'", name)
	}
	partitions, rf = -1, -1
	if s := strings.TrimSpace(f.Partitions); s != "" {
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil || n < 1 {
			return "", 0, 0, fmt.Errorf("partitions %q: want a number >= 1, or nothing for the cluster's default", s)
		}
		partitions = int32(n)
	}
	if s := strings.TrimSpace(f.ReplicationFactor); s != "" {
		n, err := strconv.ParseInt(s, 10, 16)
		if err != nil || n < 1 {
			return "", 0, 0, fmt.Errorf("replication factor %q: want a number >= 1, or nothing for the cluster's default", s)
		}
		rf = int16(n)
	}
	return name, partitions, rf, nil
}

// CreateTopic creates a topic (partitions and rf -1: the cluster's
// defaults), bounded by Config.Timeout.
func (c *Collector) CreateTopic(ctx context.Context, name string, partitions int32, rf int16) error {
	img := c.cfg.Image()
	if img == nil || len(img.Brokers) == 0 {
		return ErrNoMetadata
	}
	cl, err := c.client(img)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, rf, nil, name)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		if resp.ErrMessage != "" {
			return fmt.Errorf("%w (%s)", err, resp.ErrMessage)
		}
		return err
	}
	// The controllers have it; wait (within the timeout) until this
	// node's image has it too, so the topic's page finds it.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for c.cfg.Image().Topics[name] == nil {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
	return nil
}

// createTopic serves POST /topics: on success a redirect to the new
// topic's page, else the topics page again with the form and its error.
func (c *Console) createTopic(w http.ResponseWriter, r *http.Request) {
	f := TopicForm{Name: r.PostFormValue("name"), Partitions: r.PostFormValue("partitions"), ReplicationFactor: r.PostFormValue("replication_factor")}
	name, partitions, rf, err := f.parse()
	if err == nil {
		err = c.collector.CreateTopic(r.Context(), name, partitions, rf)
		if err == nil {
			c.log.Info("topic created from the console", "topic", name, "partitions", partitions, "replication_factor", rf, "remote", r.RemoteAddr)
			http.Redirect(w, r, "/topics/"+url.PathEscape(name), http.StatusSeeOther)
			return
		}
		err = fmt.Errorf("create topic %s: %w", name, err)
	}
	f.Error = err.Error()
	status := http.StatusBadRequest
	if errors.Is(err, ErrNoMetadata) || errors.Is(err, context.DeadlineExceeded) {
		status = http.StatusServiceUnavailable
	}
	c.render(w, r, status, "topics", view{Title: "Topics", Nav: "topics", Data: c.collector.Topics(r.Context()), Form: &f})
}
