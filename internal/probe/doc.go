// Package probe loads and attaches skbtrail's probe sources and reads their
// events: the tracer catalog, the tracepoint source, and the ring buffer.
package probe
