#!/bin/sh
# Render the devstack's Janus templates for a container: listen on all addresses, ICE on eth0 (or
# JANUS_ICE_INTERFACE), optional 1:1 NAT mapping to JANUS_PUBLIC_IP, events to the edge's sink.
set -eu
: "${JANUS_ADMIN_KEY:?JANUS_ADMIN_KEY must be set}"
: "${JANUS_ADMIN_SECRET:?JANUS_ADMIN_SECRET must be set}"
conf=/etc/mixdown-janus
lib=$(dirname "$(dirname "$(ls /usr/lib/*/janus/plugins/libjanus_videoroom.so)")")
mkdir -p "$conf"
for template in /opt/janus-templates/*.jcfg; do
  sed -e "s|@@JANUS_CONFIG_DIR@@|$conf|g" -e "s|@@JANUS_LIB_DIR@@|$lib|g" \
      -e "s|@@JANUS_ADMIN_KEY@@|$JANUS_ADMIN_KEY|g" -e "s|@@JANUS_ADMIN_SECRET@@|$JANUS_ADMIN_SECRET|g" \
      -e "s|\"10.77.0.1\"|\"0.0.0.0\"|g" -e "s|ice_enforce_list = \"mxd1\"|ice_enforce_list = \"${JANUS_ICE_INTERFACE:-eth0}\"|" \
      -e "s|http://10.77.0.254:8099/janus-events|${JANUS_EVENTS_URL:-http://edge:8099/janus-events}|" \
      "$template" > "$conf/$(basename "$template")"
done
sed -i -e 's|^\tinterface = "0.0.0.0"|\t# interface: chosen by Janus|' "$conf/janus.jcfg"
if [ -n "${JANUS_PUBLIC_IP:-}" ]; then
  sed -i "s|^nat: {|nat: {\n\tnat_1_1_mapping = \"$JANUS_PUBLIC_IP\"|" "$conf/janus.jcfg"
fi
exec janus --disable-colors -C "$conf/janus.jcfg" -F "$conf"
