// Package metrics is the Prometheus endpoint of `skbtrail drops`: the drop
// counts of the last interval and skbtrail's own health, served over HTTP.
package metrics

import (
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/skbtrail/skbtrail/internal/drops"
	"github.com/skbtrail/skbtrail/internal/names"
)

// Metrics exposes `skbtrail drops` counts to Prometheus. It holds the last
// snapshot the drops loop gave it (Update, once per interval), so a scrape
// never touches the kernel and always sees one consistent interval.
//
//	skbtrail_drops_total{reason,location,netns,device}  counter
//	skbtrail_lost_events_total{cause="map_full"}        counter: drops not counted
//	skbtrail_map_keys, skbtrail_map_keys_max            gauges: kernel map use
//	skbtrail_map_full                                   gauge: 1 when the map is full
//	skbtrail_attached_probes{probe,mode}                gauge
//	skbtrail_read_errors_total                          counter
//	skbtrail_last_update_timestamp_seconds              gauge
//
// plus the standard process_* and go_* collectors. With PodLabels,
// skbtrail_drops_total also has pod and pod_namespace labels (see
// PodLabels for why that adds no series).
type Metrics struct {
	mu       sync.Mutex
	rows     []drops.Row
	lost     uint64
	keys     int
	maxKeys  int
	probe    string
	mode     string
	errors   uint64
	lastRead time.Time
	names    interface{ Who(uint32) names.Who } // nil: no pod labels

	dDrops, dLost, dKeys, dMaxKeys, dFull, dProbes, dErrors, dLast *prometheus.Desc
}

// New returns Metrics for a drop counter attached to probe with mode
// (tp_btf, raw_tp; "" until attached, see SetMode) and a kernel map of
// maxKeys keys.
func New(probe, mode string, maxKeys int) *Metrics {
	return &Metrics{
		probe: probe, mode: mode, maxKeys: maxKeys,
		dDrops: prometheus.NewDesc("skbtrail_drops_total",
			"Packets the kernel dropped, by drop reason, dropping function, network namespace inode and device.",
			[]string{"reason", "location", "netns", "device"}, nil),
		dLost: prometheus.NewDesc("skbtrail_lost_events_total",
			"Drops skbtrail saw but could not count, by cause (map_full: the kernel map of keys was full).",
			[]string{"cause"}, nil),
		dKeys:    prometheus.NewDesc("skbtrail_map_keys", "Keys in the kernel map of drop counts.", nil, nil),
		dMaxKeys: prometheus.NewDesc("skbtrail_map_keys_max", "Capacity of the kernel map of drop counts.", nil, nil),
		dFull:    prometheus.NewDesc("skbtrail_map_full", "1 when the kernel map of drop counts is full and new keys are lost.", nil, nil),
		dProbes: prometheus.NewDesc("skbtrail_attached_probes", "Probes attached, by probe and program type.",
			[]string{"probe", "mode"}, nil),
		dErrors: prometheus.NewDesc("skbtrail_read_errors_total", "Failed reads of the kernel map of drop counts.", nil, nil),
		dLast:   prometheus.NewDesc("skbtrail_last_update_timestamp_seconds", "When the drop counts were last read from the kernel.", nil, nil),
	}
}

// PodLabels adds the labels pod and pod_namespace to skbtrail_drops_total,
// named by n from the netns label ("" for a namespace of no pod). A pod
// label is a function of the netns label, so the number of series stays
// what it is without them: at most one per kernel map key (--max-keys).
// Call it before the first scrape.
func (m *Metrics) PodLabels(n interface{ Who(uint32) names.Who }) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.names = n
	m.dDrops = prometheus.NewDesc("skbtrail_drops_total",
		"Packets the kernel dropped, by drop reason, dropping function, network namespace inode and device, and the pod of the namespace.",
		[]string{"reason", "location", "netns", "device", "pod", "pod_namespace"}, nil)
}

// Update replaces the snapshot: every key's total over the run, and the
// interval just read.
func (m *Metrics) Update(totals []drops.Row, iv drops.Interval) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rows, m.lost, m.keys, m.lastRead = totals, iv.LostAll, iv.Keys, iv.Time
}

// SetMode records how the probe was attached, once it is.
func (m *Metrics) SetMode(mode string) {
	m.mu.Lock()
	m.mode = mode
	m.mu.Unlock()
}

// ReadError counts a failed read of the kernel map.
func (m *Metrics) ReadError() {
	m.mu.Lock()
	m.errors++
	m.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.dDrops, m.dLost, m.dKeys, m.dMaxKeys, m.dFull, m.dProbes, m.dErrors, m.dLast} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.rows {
		labels := []string{r.Reason, r.Location, strconv.FormatUint(uint64(r.Netns), 10), r.Device}
		if m.names != nil {
			w := m.names.Who(r.Netns)
			labels = append(labels, w.Pod, w.PodNamespace)
		}
		ch <- prometheus.MustNewConstMetric(m.dDrops, prometheus.CounterValue, float64(r.Count), labels...)
	}
	full := 0.0
	if m.keys >= m.maxKeys {
		full = 1
	}
	ch <- prometheus.MustNewConstMetric(m.dLost, prometheus.CounterValue, float64(m.lost), "map_full")
	ch <- prometheus.MustNewConstMetric(m.dKeys, prometheus.GaugeValue, float64(m.keys))
	ch <- prometheus.MustNewConstMetric(m.dMaxKeys, prometheus.GaugeValue, float64(m.maxKeys))
	ch <- prometheus.MustNewConstMetric(m.dFull, prometheus.GaugeValue, full)
	attached := 0.0
	if m.mode != "" {
		attached = 1
	}
	ch <- prometheus.MustNewConstMetric(m.dProbes, prometheus.GaugeValue, attached, m.probe, m.mode)
	ch <- prometheus.MustNewConstMetric(m.dErrors, prometheus.CounterValue, float64(m.errors))
	last := 0.0
	if !m.lastRead.IsZero() {
		last = float64(m.lastRead.UnixNano()) / 1e9
	}
	ch <- prometheus.MustNewConstMetric(m.dLast, prometheus.GaugeValue, last)
}

// Handler returns the /metrics handler: m plus the process and Go runtime
// collectors, in a registry of their own.
func (m *Metrics) Handler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(m, collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewGoCollector())
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// Serve listens on addr (host:port: "127.0.0.1:9464" for this host only,
// "198.18.0.1:9464" for one address, ":9464" for every address) at once, so
// that a bad or busy address is an error before anything is attached, and
// serves h at /metrics, and nothing else (every other path is 404), until
// the returned server is closed.
//
// webConfig, if not "", is an exporter-toolkit web configuration file
// (https://github.com/prometheus/exporter-toolkit/blob/master/docs/web-configuration.md):
// TLS (tls_server_config: cert_file, key_file, client_auth_type, client_ca_file)
// and basic auth (basic_auth_users: user: bcrypt hash). It is checked here,
// before anything is attached (a bad file is a *BadConfig); the toolkit
// reads it again on every connection, so certificates can be renewed in
// place. Serving errors after the start are written to log.
func Serve(addr, webConfig string, h http.Handler, log io.Writer) (*http.Server, error) {
	if webConfig != "" {
		if err := web.Validate(webConfig); err != nil {
			return nil, &BadConfig{File: webConfig, Err: err}
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	srv := &http.Server{
		Addr:              ln.Addr().String(), // what was listened on, for the caller
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		// Handshake failures (a plain HTTP client on a TLS port, a
		// client without a certificate) are the client's problem: not
		// worth a line per scrape on skbtrail's stderr.
		ErrorLog: stdlog.New(io.Discard, "", 0),
	}
	logger := slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelError}))
	go func() {
		flags := &web.FlagConfig{WebConfigFile: &webConfig}
		if err := web.Serve(ln, srv, flags, logger); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(log, "skbtrail: warning: metrics endpoint stopped: %v\n", err)
		}
	}()
	return srv, nil
}

// BadConfig is a web configuration file that cannot be used.
type BadConfig struct {
	File string
	Err  error
}

func (e *BadConfig) Error() string {
	return fmt.Sprintf("--web-config %s: %v (see https://github.com/prometheus/exporter-toolkit/blob/master/docs/web-configuration.md)", e.File, e.Err)
}
func (e *BadConfig) Unwrap() error { return e.Err }
