// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Debian's libpcap.a is built with D-Bus capture support (pcap-dbus.o),
 * which pcap.c's table of capture sources always references. skbtrail only
 * compiles filters (pcap_open_dead, pcap_compile) and never opens a capture
 * device, so no D-Bus code ever runs; these definitions stand in for
 * libdbus-1 (of which Debian ships no static library) so that libpcap links
 * statically. Each fails the way libdbus reports an error, should it ever be
 * called: no connection, no message.
 */
#include <stddef.h>

void *dbus_bus_get(int type, void *error) { return NULL; }
void *dbus_connection_open(const char *address, void *error) { return NULL; }
int dbus_bus_register(void *connection, void *error) { return 0; }
void dbus_bus_add_match(void *connection, const char *rule, void *error) {}
void dbus_connection_flush(void *connection) {}
void *dbus_connection_pop_message(void *connection) { return NULL; }
int dbus_connection_read_write(void *connection, int timeout) { return 0; }
int dbus_connection_send(void *connection, void *message, void *serial) { return 0; }
void dbus_connection_set_max_received_size(void *connection, long size) {}
void dbus_connection_unref(void *connection) {}
void dbus_error_free(void *error) {}
int dbus_error_is_set(const void *error) { return 1; }
void dbus_free(void *memory) {}
void *dbus_message_demarshal(const char *str, int len, void *error) { return NULL; }
int dbus_message_is_signal(void *message, const char *iface, const char *name) { return 0; }
int dbus_message_marshal(void *msg, char **marshalled, int *len) { return 0; }
void dbus_message_unref(void *message) {}
