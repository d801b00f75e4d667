"""The release Lambda artifact: small enough, and a binary Amazon Linux 2023 runs.

Relies on: the musl build (`deployer package`) and binutils' readelf. The emulator would run
a dynamically linked binary on this host too, so this is checked here, not there.
"""
import subprocess
import zipfile

LIMIT = 15 * 2**20


def test_the_zip_is_under_15_mib_with_one_executable_bootstrap(package):
    path = package["lambda"]["path"]
    size = package["lambda"]["bytes"]
    assert size < LIMIT, f"{size / 2**20:.1f} MiB"
    with zipfile.ZipFile(path) as z:
        (info,) = z.infolist()
        assert info.filename == "bootstrap"
        assert (info.external_attr >> 16) & 0o777 == 0o755, "Lambda refuses a bootstrap without its exec bit"


def test_the_bootstrap_is_static_so_it_needs_no_glibc(package):
    binary = package["lambda"]["bootstrap"]
    headers = subprocess.run(["readelf", "--program-headers", "--wide", binary], capture_output=True, text=True, check=True).stdout
    assert "INTERP" not in headers, "a program interpreter means dynamic linking"
    dynamic = subprocess.run(["readelf", "--dynamic", "--wide", binary], capture_output=True, text=True, check=True).stdout
    assert "NEEDED" not in dynamic, "no shared libraries at all"
    versions = subprocess.run(["readelf", "--version-info", "--wide", binary], capture_output=True, text=True, check=True).stdout
    assert "GLIBC_" not in versions
