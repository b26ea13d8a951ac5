#!/usr/bin/env python3
"""The peers of the side-by-side benchmark, and the check that they counted
what Farol counted.

    peers.py duckdb  DATA_DIR OUT_DIR   # DuckDB SQL, 2 threads
    peers.py spark   DATA_DIR OUT_DIR   # PySpark, local[2]
    peers.py compare OUT_DIR FAROL_JSON # OUT_DIR/duckdb's 1-minute counts vs
                                        # Farol's, OUT_DIR/spark's vs DuckDB's

Both jobs read the files `bench/generate.py` wrote (`posts-*.jsonl`,
`logs-*.log`) and write four Parquet files: hashtag and log-class counts
per key, per 1-minute tumbling window and per 5-minute window sliding every
minute (windows aligned to the epoch, as Farol's).

* Hashtags: `[#＃]` then letters, marks, digits or `_` (at least one
  non-digit), lower-cased, counted once per distinct key in a post. The
  generator removed every other `#` from the bodies, so this simple rule and
  Farol's full twitter-text rules find the same tags.
* Log class: the level word after the timestamp of the four log4j-style
  formats the generator writes (HDFS, Hadoop, Spark, Zookeeper), one regular
  expression; UNKNOWN when there is none.
* Event time: `created_at`; for logs the line's timestamp in its format.
"""

import glob
import os
import sys

LEVELS = "TRACE|DEBUG|INFO|WARN|ERROR|FATAL"
LEVEL_RE = r"^\S+ \S+ (?:- |\d+ )?(" + LEVELS + r")\b"
TAG_RE = r"[#＃]([\p{L}\p{M}\p{N}_]+)"


def files(data, pattern):
    found = sorted(glob.glob(os.path.join(data, pattern)))
    if not found:
        sys.exit(f"no {pattern} under {data}")
    return found


def duckdb_job(data, out):
    import duckdb

    con = duckdb.connect(config={"threads": 2})
    posts = files(data, "posts-*.jsonl")
    logs = files(data, "logs-*.log")
    con.execute(
        f"""
        CREATE TEMP TABLE tag_1m AS
        WITH p AS (
            SELECT strptime(created_at, '%Y-%m-%dT%H:%M:%S.%gZ') AS ts,
                   list_distinct(list_transform(
                       regexp_extract_all(text, '{TAG_RE}', 1), lambda x: lower(x))) AS tags
            FROM read_json({posts!r}, format = 'newline_delimited',
                           columns = {{'id': 'VARCHAR', 'created_at': 'VARCHAR', 'text': 'VARCHAR'}})
        ), t AS (SELECT ts, unnest(tags) AS key FROM p)
        SELECT time_bucket(INTERVAL 1 MINUTE, ts) AS window_start, key, count(*) AS count
        FROM t WHERE NOT regexp_full_match(key, '[0-9]+')
        GROUP BY ALL
        """
    )
    sep = "\x01"
    con.execute(
        f"""
        CREATE TEMP TABLE class_1m AS
        WITH l AS (
            SELECT line,
                   CASE
                     WHEN regexp_matches(line, '^\\d{{6}} \\d{{6}} ')
                       THEN strptime(substr(line, 1, 13), '%y%m%d %H%M%S')
                     WHEN regexp_matches(line, '^\\d{{4}}-\\d\\d-\\d\\d ')
                       THEN strptime(substr(line, 1, 23), '%Y-%m-%d %H:%M:%S,%g')
                     WHEN regexp_matches(line, '^\\d\\d/\\d\\d/\\d\\d ')
                       THEN strptime(substr(line, 1, 17), '%y/%m/%d %H:%M:%S')
                   END AS ts
            FROM read_csv({logs!r}, delim = '{sep}', quote = '', escape = '',
                          header = false, columns = {{'line': 'VARCHAR'}})
        )
        SELECT time_bucket(INTERVAL 1 MINUTE, ts) AS window_start,
               coalesce(nullif(regexp_extract(line, '{LEVEL_RE}', 1), ''), 'UNKNOWN') AS key,
               count(*) AS count
        FROM l GROUP BY ALL
        """
    )
    for name in ("tag", "class"):
        con.execute(
            f"COPY (SELECT * FROM {name}_1m ORDER BY ALL) TO "
            f"'{out}/duckdb_{name}_1m.parquet' (FORMAT parquet)"
        )
        # 5-minute windows sliding every minute: each minute's count goes to
        # the five windows that contain it.
        con.execute(
            f"""
            COPY (
              SELECT window_start - to_minutes(o) AS window_start, key, sum(count) AS count
              FROM {name}_1m, range(5) r(o)
              GROUP BY ALL ORDER BY ALL
            ) TO '{out}/duckdb_{name}_5m.parquet' (FORMAT parquet)
            """
        )


def spark_job(data, out):
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    spark = (
        SparkSession.builder.master("local[2]")
        .appName("farol-side-by-side")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    posts = (
        spark.read.schema("id STRING, created_at STRING, text STRING")
        .json(files(data, "posts-*.jsonl"))
        .select(
            F.to_timestamp("created_at").alias("ts"),
            F.explode(
                F.array_distinct(
                    F.transform(
                        F.regexp_extract_all("text", F.lit(TAG_RE), F.lit(1)), F.lower
                    )
                )
            ).alias("key"),
        )
        .where(~F.col("key").rlike("^[0-9]+$"))
    )
    ts = (
        F.when(
            F.col("value").rlike(r"^\d{6} \d{6} "),
            F.to_timestamp(F.substring("value", 1, 13), "yyMMdd HHmmss"),
        )
        .when(
            F.col("value").rlike(r"^\d{4}-\d\d-\d\d "),
            F.to_timestamp(F.substring("value", 1, 23), "yyyy-MM-dd HH:mm:ss,SSS"),
        )
        .when(
            F.col("value").rlike(r"^\d\d/\d\d/\d\d "),
            F.to_timestamp(F.substring("value", 1, 17), "yy/MM/dd HH:mm:ss"),
        )
    )
    level = F.regexp_extract("value", LEVEL_RE, 1)
    logs = spark.read.text(files(data, "logs-*.log")).select(
        ts.alias("ts"),
        F.when(level == "", F.lit("UNKNOWN")).otherwise(level).alias("key"),
    )
    for name, df in (("tag", posts), ("class", logs)):
        df = df.cache()
        for label, w in (("1m", F.window("ts", "1 minute")), ("5m", F.window("ts", "5 minutes", "1 minute"))):
            (
                df.groupBy(w.alias("w"), "key")
                .count()
                .select(F.col("w.start").alias("window_start"), "key", "count")
                .write.mode("overwrite")
                .parquet(f"{out}/spark_{name}_{label}.parquet")
            )
        df.unpersist()
    spark.stop()


def compare(out, farol_json):
    """DuckDB's 1-minute counts against Farol's 10 s buckets summed per
    minute (over sources), and Spark's four outputs against DuckDB's; exits
    1 on any difference."""
    import duckdb

    con = duckdb.connect()
    con.execute(
        f"""
        CREATE TEMP TABLE f AS
        SELECT CASE kind WHEN 'hashtag' THEN 'tag' ELSE 'class' END AS name,
               time_bucket(INTERVAL 1 MINUTE, strptime(bucket_start, '%Y-%m-%dT%H:%M:%SZ')) AS window_start,
               key, sum(count) AS count
        FROM read_json('{farol_json}', format = 'newline_delimited',
             columns = {{'bucket_start': 'VARCHAR', 'kind': 'VARCHAR', 'source': 'VARCHAR',
                         'key': 'VARCHAR', 'count': 'BIGINT'}})
        WHERE kind IN ('hashtag', 'log_class')
        GROUP BY ALL
        """
    )

    def differ(a, b):
        return con.execute(
            f"""
            SELECT count(*) FROM (
              (SELECT window_start::TIMESTAMP, key, count::BIGINT FROM {a}
               EXCEPT ALL SELECT window_start::TIMESTAMP, key, count::BIGINT FROM {b})
              UNION ALL
              (SELECT window_start::TIMESTAMP, key, count::BIGINT FROM {b}
               EXCEPT ALL SELECT window_start::TIMESTAMP, key, count::BIGINT FROM {a}))
            """
        ).fetchone()[0]

    bad = 0
    for name in ("tag", "class"):
        d = f"read_parquet('{out}/duckdb/duckdb_{name}_1m.parquet')"
        rows, total = con.execute(f"SELECT count(*), sum(count) FROM {d}").fetchone()
        diff = differ(d, f"(SELECT * FROM f WHERE name = '{name}')")
        print(f"{name} 1m: DuckDB {rows} (minute, key) counts, {total} in all; {diff} differ from Farol's")
        bad += diff
        for w in ("1m", "5m"):
            d = f"read_parquet('{out}/duckdb/duckdb_{name}_{w}.parquet')"
            sp = f"read_parquet('{out}/spark/spark_{name}_{w}.parquet/*.parquet')"
            diff = differ(d, sp)
            print(f"{name} {w}: {diff} of Spark's counts differ from DuckDB's")
            bad += diff
    if bad:
        sys.exit(1)


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("duckdb", "spark", "compare"):
        sys.exit(__doc__)
    cmd, a, b = sys.argv[1:]
    if cmd == "compare":
        compare(a, b)
        return
    os.makedirs(b, exist_ok=True)
    (duckdb_job if cmd == "duckdb" else spark_job)(a, b)


if __name__ == "__main__":
    main()
