#!/bin/sh
# farol-demo-feed: what the compose `demo` profile tails. Appends the bundled
# sample access log (samples/access.log) and the recorded Mastodon statuses
# (samples/mastodon_social.jsonl) to files under FAROL_DEMO_DIR, stamped with
# the current time, so that windows close and the Kibana dashboards (last
# 24 hours) have data on first start.
#
# Every tick writes FAROL_DEMO_LINES access-log lines (their [timestamp]
# replaced by now) to access.log and one status (its created_at set to now and
# its id made unique per pass, so a second pass is new posts, not copies) to
# mastodon_social.jsonl. FAROL_DEMO_TICKS=0 (the default) runs until stopped.
set -eu
dir=${FAROL_DEMO_DIR:-/var/lib/farol/demo}
samples=${FAROL_SAMPLES_DIR:-/usr/share/farol/samples}
lines=${FAROL_DEMO_LINES:-5}
ticks=${FAROL_DEMO_TICKS:-0}
interval=${FAROL_DEMO_INTERVAL:-1}
log_in="$samples/access.log"
posts_in="$samples/mastodon_social.jsonl"
mkdir -p "$dir"
log_out="$dir/access.log"
posts_out="$dir/mastodon_social.jsonl"
: >>"$log_out"
: >>"$posts_out"
log_total=$(grep -c '' "$log_in")
posts_total=$(grep -c '' "$posts_in")
next_line=1
next_post=1
pass=1
tick=0
while [ "$ticks" -eq 0 ] || [ "$tick" -lt "$ticks" ]; do
    clf=$(LC_ALL=C date -u '+%d/%b/%Y:%H:%M:%S +0000')
    iso=$(date -u '+%Y-%m-%dT%H:%M:%S.000Z')
    last=$((next_line + lines - 1))
    if [ "$last" -gt "$log_total" ]; then last=$log_total; fi
    sed -n "${next_line},${last}p" "$log_in" | sed "s#\[[^]]*\]#[$clf]#" >>"$log_out"
    next_line=$((last + 1))
    if [ "$next_line" -gt "$log_total" ]; then next_line=1; fi
    sed -n "${next_post}p" "$posts_in" |
        sed -e "s#\"created_at\":\"[^\"]*\"#\"created_at\":\"$iso\"#g" \
            -e "s#^{\"id\":\"\([0-9]*\)\"#{\"id\":\"\1$(printf '%04d' "$pass")\"#" >>"$posts_out"
    next_post=$((next_post + 1))
    if [ "$next_post" -gt "$posts_total" ]; then
        next_post=1
        pass=$((pass + 1))
    fi
    tick=$((tick + 1))
    if [ "$ticks" -eq 0 ] || [ "$tick" -lt "$ticks" ]; then sleep "$interval"; fi
done
