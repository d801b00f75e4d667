#!/usr/bin/env python3
"""Median wall time of `deployer synth` per stage, beside cfn-lint's own time on the same template.

    cargo build --release -p deployer
    python3 bench/synth.py --deployer target/release/deployer --cfn-lint "$(scripts/setup-python)/bin/cfn-lint"

Each synth run is a whole process (start, config, render, write), as a user or CI runs it.
"""

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

CONFIG = """\
stages:
  prod:
    protected: true
    region: eu-west-1
  extended:
    resources:
      Resources:
        UsageTable:
          Type: AWS::DynamoDB::Table
          Properties:
            BillingMode: PAY_PER_REQUEST
            AttributeDefinitions: [{AttributeName: id, AttributeType: S}]
            KeySchema: [{AttributeName: id, KeyType: HASH}]
        EtlErrorsAlarm:
          Type: AWS::CloudWatch::Alarm
          Properties:
            Namespace: AWS/Lambda
            MetricName: Errors
            Dimensions: [{Name: FunctionName, Value: !Ref EtlFunction}]
            Statistic: Sum
            Period: 300
            EvaluationPeriods: 1
            Threshold: 1
            ComparisonOperator: GreaterThanOrEqualToThreshold
    overrides:
      EtlFunction: {Description: extended}
"""


def timed(cmd, runs):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--deployer", required=True)
    ap.add_argument("--cfn-lint", required=True)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--lint-runs", type=int, default=5)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    (tmp / "pipeline.yaml").write_text(CONFIG)
    print(f"{'stage':<20} {'synth median':>13} {'cfn-lint median':>16} {'cfn-lint / synth':>17}")
    # `extended` adds a table and an alarm (`resources:`) and overrides a property: synth then
    # unpacks the schema digest and checks them.
    for stage in ["alice", "prod", "abcdefghij-123456", "extended"]:
        out = tmp / f"{stage}.yaml"
        cmd = [args.deployer, "--config", tmp / "pipeline.yaml", "synth", "--stage", stage, "--out", out]
        synth = timed(cmd, args.runs)
        lint = timed([args.cfn_lint, "--", out], args.lint_runs)
        print(f"{stage:<20} {synth * 1000:>10.1f} ms {lint * 1000:>13.0f} ms {lint / synth:>16.0f}x")


if __name__ == "__main__":
    main()
