// Package metrics is the Prometheus endpoint of `skbtrail drops`: the drop
// counts of the last interval and skbtrail's own health, served over HTTP.
package metrics

import (
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

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

// Serve listens on addr (host:port, ":9464") at once, so that a bad
// or busy address is an error before anything is attached, and serves h at
// /metrics (and a pointer to it at /) until the returned server is closed.
func Serve(addr string, h http.Handler) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", h)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("skbtrail drops: metrics at /metrics\n"))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln) // returns http.ErrServerClosed on Close
	return srv, nil
}
