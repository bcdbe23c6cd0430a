package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/urfave/cli/v2"
)

// bytesPerMB is the MB of the bench reports, as kafka-producer-perf-test
// counts it.
const bytesPerMB = 1024 * 1024

func benchCommand() *cli.Command {
	return &cli.Command{
		Name:        "bench",
		Usage:       "measure produce or consume throughput, like kafka-producer-perf-test",
		Subcommands: []*cli.Command{benchProduceCommand(), benchConsumeCommand()},
	}
}

// benchOutputFlags are the report and progress flags of both benches.
func benchOutputFlags() []cli.Flag {
	return []cli.Flag{
		boolFlag("json", "print the final report as one JSON object", false),
		boolFlag("no-progress", "no progress bar; print a stats line every --report-interval instead", false),
		durationFlag("report-interval", "interval of the stats lines printed without a progress bar", 5*time.Second),
	}
}

// ensureTopic creates topic, with configs (may be nil), unless it exists.
func ensureTopic(ctx context.Context, adm *kadm.Client, topic string, partitions int32, rf int16, configs map[string]*string) error {
	topics, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return fmt.Errorf("look up topic %s: %w", topic, err)
	}
	if d, ok := topics[topic]; ok && d.Err == nil {
		if partitions > 0 && int32(len(d.Partitions)) != partitions {
			fmt.Fprintf(os.Stderr, "warning: topic %s exists with %d partitions, not %d; using it as it is\n",
				topic, len(d.Partitions), partitions)
		}
		return nil
	}
	resp, err := adm.CreateTopic(ctx, partitions, rf, configs, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create topic %s: %w%s", topic, err, detail(resp.ErrMessage))
	}
	return nil
}

// progress shows a running bench: a progress bar on a terminal, else a
// stats line every interval. Stop it before printing the report.
type progress struct {
	stopOnce sync.Once
	stopCh   chan struct{}
	done     chan struct{}
}

// startProgress calls count (the work done so far) on a ticker and shows it
// as a bar of total steps, or, without a bar, prints line() every
// interval.
func startProgress(w io.Writer, bar bool, total int64, description string, interval time.Duration,
	count func() int64, line func() string) *progress {
	p := &progress{stopCh: make(chan struct{}), done: make(chan struct{})}
	var pb *progressbar.ProgressBar
	tickEvery := interval
	if bar {
		pb = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription(description),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("rec"),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionSetPredictTime(true),
		)
		tickEvery = 200 * time.Millisecond
	}
	if tickEvery <= 0 {
		tickEvery = 5 * time.Second
	}
	go func() {
		defer close(p.done)
		tick := time.NewTicker(tickEvery)
		defer tick.Stop()
		for {
			select {
			case <-p.stopCh:
				if pb != nil {
					_ = pb.Set64(count())
					_ = pb.Exit()
					fmt.Fprintln(w)
				}
				return
			case <-tick.C:
				if pb != nil {
					_ = pb.Set64(count())
				} else {
					fmt.Fprintln(w, line())
				}
			}
		}
	}()
	return p
}

// stop ends the display and waits for it. Idempotent.
func (p *progress) stop() {
	p.stopOnce.Do(func() { close(p.stopCh) })
	<-p.done
}

// showBar decides between the bar and stats lines.
func showBar(c *cli.Context) bool {
	return !c.Bool("no-progress") && isTerminal(os.Stderr)
}

// writeJSON prints v as one line of JSON.
func writeJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// rate is n per second over d (0 when d is 0).
func rate(n float64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return n / d.Seconds()
}
