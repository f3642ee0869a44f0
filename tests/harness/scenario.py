"""Build exactly the engine state a test needs: images, tags, containers, networks, volumes, build cache.

No registry is involved.  Images are written by hand as one docker-save tarball and loaded with a single
``POST /images/load``, so a scenario of hundreds of images loads in one call.  Layer contents are seeded
pseudo-random bytes, so the same spec and prefix always give the same diff IDs and image IDs, and every
layer's size is known to the byte.

Spec keys (all optional)::

    layers      {name: bytes}                      sizes; unlisted layers get DEFAULT_LAYER_SIZE
    images      [{name, tags, layers, created, labels, cmd, base}]
                tags=[] makes the image dangling; every image starts with the busybox ``base`` layer
                unless base=False; a layer shared by name must sit on the same layers in every image
                (layers are stored per chain); created is RFC 3339 UTC ("2020-01-01T00:00:00Z")
    containers  [{name, image, state, writable_bytes, labels, volumes}]
                image: a tag (created by tag), an image name from this spec or a "sha256:" ID (by ID);
                state: running (default) | exited (ran, then stopped) | created (never started);
                volumes: ["vol:/path"] (a spec volume) or ["/path"] (anonymous, in use)
    networks    [{name, labels}]
    volumes     [{name, labels, bytes}] or [{anonymous: True, bytes}] (left unused, as after ``docker rm``)
    builds      [{name, tags, files: {filename: bytes}}]     BuildKit build: leaves build cache
    classic_builds [{name, tags, files: {filename: bytes}, labels}]  legacy builder: one untagged parent per
                FROM scratch + COPY step, as ``DOCKER_BUILDKIT=0 docker build`` leaves them
    multiplatform [{name, tag, platforms, size, manifest_only, missing}]   containerd image store only:
                an index with one manifest per platform; a platform in manifest_only comes with its manifest blob
                but no config or layer (pulled in part), one in missing with no blob at all

``prefix`` isolates tests sharing an engine: tags become ``PREFIX/tag``, other names ``PREFIX-name``,
and layer contents are seeded with it (except ``base``), so two prefixes never share images or layers.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import contextlib
import datetime
import hashlib
import io
import json
import os
import random
import subprocess
import tarfile
import tempfile
import threading
import time
from pathlib import Path

import docker

from . import engines

BUSYBOX = Path("/bin/busybox")
BASE = "base"
DEFAULT_LAYER_SIZE = 100_000
DEFAULT_CREATED = "2020-01-01T00:00:00Z"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PROTECT_LABEL = {"reclaim.protect": "true"}
_BASE_LINKS = ("sh", "sleep", "true")
_EPOCH = 1577836800  # fixed tar mtime: any host time in a layer would change its diff ID


class NotSupported(RuntimeError):
    """The engine cannot hold the requested kind of object."""


@dataclasses.dataclass
class Scenario:
    prefix: str
    layers: dict = dataclasses.field(default_factory=dict)      # name -> {"size", "diff_id"}
    images: dict = dataclasses.field(default_factory=dict)      # name -> {"id", "tags", "layers", "diff_ids"}
    containers: dict = dataclasses.field(default_factory=dict)  # name -> id
    networks: dict = dataclasses.field(default_factory=dict)    # name -> id
    volumes: dict = dataclasses.field(default_factory=dict)     # spec name (or "anonymous-N") -> engine name
    builds: dict = dataclasses.field(default_factory=dict)      # name -> {"id", "tags"}
    classic_builds: dict = dataclasses.field(default_factory=dict)  # name -> {"id", "tags", "parents"}
    build_cache: list = dataclasses.field(default_factory=list)  # /system/df BuildCache after the builds
    multiplatform: dict = dataclasses.field(default_factory=dict)  # name -> {"id", "tag", "platforms"}

    def unique_layer_bytes(self, images=None) -> int:
        """Sum of the sizes of the distinct layers used by IMAGES (names; default all)."""
        names = {layer for name, image in self.images.items() if images is None or name in images
                 for layer in image["layers"]}
        return sum(self.layers[name]["size"] for name in names)


def client(docker_host: str) -> docker.APIClient:
    return docker.APIClient(base_url=docker_host, version="auto", timeout=300)


def system_df(docker_host: str) -> dict:
    """/system/df, asked again while a build's cleanup races it on the containerd store (404 "snapshot ...
    does not exist", moby/buildkit#3599). The tests judge with their own reads, not the collection's."""
    api = client(docker_host)
    for pause in (0.1, 0.3, 1.0):
        try:
            return api.df()
        except docker.errors.NotFound as exc:
            if "snapshot" not in str(exc.explanation):
                raise
        time.sleep(pause)
    return api.df()


def layers_size(docker_host: str) -> int:
    """The engine's own accounting of image bytes: the judge of every freed-bytes claim."""
    return system_df(docker_host)["LayersSize"]


def is_containerd_store(api: docker.APIClient) -> bool:
    return any(key == "driver-type" and "containerd" in value for key, value in api.info().get("DriverStatus") or [])


# ---------------------------------------------------------------- tarballs

def _tar_bytes(entries) -> bytes:
    """A tar of ENTRIES [(name, bytes | None for a directory | str for a symlink target)], reproducibly."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in entries:
            info = tarfile.TarInfo(name)
            info.mtime, info.uid, info.gid, info.uname, info.gname = _EPOCH, 0, 0, "", ""
            if content is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif isinstance(content, str):
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, content, 0o777
                tar.addfile(info)
            else:
                info.size, info.mode = len(content), 0o755
                tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def _payload(seed: str, size: int) -> bytes:
    # Random, not zeros: zeros compress (the containerd store counted a 4 MB zero layer as ~8 KB), so the
    # bytes stored would not be the bytes defined.
    return random.Random(seed).randbytes(size)


def _base_size() -> int:
    # Graphdriver sizes count a symlink as the length of its target.
    return BUSYBOX.stat().st_size + len(_BASE_LINKS) * len("busybox")


def _layer_tar(name: str, size: int, prefix: str) -> bytes:
    if name == BASE:
        return _tar_bytes([("bin", None), ("bin/busybox", BUSYBOX.read_bytes())]
                          + [(f"bin/{link}", "busybox") for link in _BASE_LINKS])
    return _tar_bytes([("layers", None), (f"layers/{name}", _payload(f"{prefix}/{name}/{size}", size))])


def _json(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _image_config(diff_ids, layer_names, created, labels, cmd, arch="amd64") -> bytes:
    return _json({
        "architecture": arch, "os": "linux", "created": created,
        "config": {"Env": [PATH_ENV], "Cmd": cmd, "Labels": labels or None},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": created, "created_by": f"scenario layer {n}"} for n in layer_names],
    })


# ---------------------------------------------------------------- names

def _tag(prefix, tag):
    tag = tag if ":" in tag.rsplit("/", 1)[-1] else tag + ":latest"
    return f"{prefix}/{tag}" if prefix else tag


def _name(prefix, name):
    return f"{prefix}-{name}" if prefix else name


# ---------------------------------------------------------------- images

def load_images(api, images: list, layer_sizes: dict, prefix: str, scenario: Scenario):
    """Write IMAGES as one docker-save tarball and load it with one call."""
    tar_entries, manifest, layer_files, below = [], [], {}, {}
    for image in images:
        names = ([BASE] if image.get("base", True) else []) + list(image.get("layers", []))
        for depth, layer in enumerate(names):
            # A layer is stored once per chain: the same name above different layers would be two copies.
            if below.setdefault(layer, names[:depth]) != names[:depth]:
                raise ValueError(f"image {image['name']}: layer {layer} must sit on {below[layer]} as in other images")
            if layer not in layer_files:
                data = _layer_tar(layer, layer_sizes.get(layer, DEFAULT_LAYER_SIZE), prefix)
                digest = _sha(data)
                size = _base_size() if layer == BASE else layer_sizes.get(layer, DEFAULT_LAYER_SIZE)
                scenario.layers[layer] = {"size": size, "diff_id": digest}
                layer_files[layer] = f"{digest[7:]}/layer.tar"
                tar_entries.append((layer_files[layer], data))
        diff_ids = [scenario.layers[n]["diff_id"] for n in names]
        config = _image_config(diff_ids, names, image.get("created", DEFAULT_CREATED), image.get("labels"),
                               image.get("cmd", ["sh"]))
        config_file = _sha(config)[7:] + ".json"
        tar_entries.append((config_file, config))
        tags = [_tag(prefix, t) for t in image.get("tags", [])]
        manifest.append({"Config": config_file, "RepoTags": tags or None,
                         "Layers": [layer_files[n] for n in names]})
        scenario.images[image["name"]] = {"id": _sha(config), "tags": tags, "layers": names,
                                          "diff_ids": diff_ids}
    tar_entries.append(("manifest.json", _json(manifest)))
    messages = _load(api, _tar_bytes(tar_entries))
    if not is_containerd_store(api):
        return  # graphdriver: the image ID is the config digest, as computed above
    # The containerd store names an image by its manifest digest, which it writes itself: ask for it.
    # Untagged images are found among the "Loaded image ID" lines by comparing what defines them.
    loaded = [line.split(": ", 1)[1] for m in messages for line in m.get("stream", "").splitlines()
              if line.startswith("Loaded image ID: ")]
    # One list call, not an inspect per image: each costs ~11 ms on this store.
    listed = api.images()
    by_tag = {tag: i["Id"] for i in listed for tag in i.get("RepoTags") or []}
    tagged_ids = set(by_tag.values())
    loaded_untagged = [i for i in loaded if i not in tagged_ids]
    wanted = [(image, spec) for image, spec in zip(scenario.images.values(), images) if not image["tags"]]
    # Creation time and labels from the same list call tell most untagged images apart; only those they do not
    # (equal times and labels, or not listed) are inspected to compare their layers as well.
    brief = {i["Id"]: (i.get("Created"), json.dumps(i.get("Labels") or None, sort_keys=True)) for i in listed}
    by_brief = {}
    for image_id in loaded_untagged:
        by_brief.setdefault(brief.get(image_id), []).append(image_id)
    spec_briefs = [(_timestamp(spec.get("created", DEFAULT_CREATED)),
                    json.dumps(spec.get("labels") or None, sort_keys=True)) for _image, spec in wanted]
    unique = {key for key, count in collections.Counter(spec_briefs).items() if count == 1}
    untagged = {}
    for key, ids in by_brief.items():
        if key is not None and len(ids) == 1 and key in unique:
            untagged[key] = ids[0]
        else:
            untagged.update({_identity(api.inspect_image(i)): i for i in ids})
    for image in scenario.images.values():
        if image["tags"]:
            image["id"] = by_tag[image["tags"][0]]
    for (image, spec), key in zip(wanted, spec_briefs):
        if key not in untagged:  # told apart by its layers
            key = (tuple(image["diff_ids"]), spec.get("created", DEFAULT_CREATED),
                   json.dumps(spec.get("labels") or None, sort_keys=True))
        image["id"] = untagged[key]


def _timestamp(created: str) -> int:
    return int(datetime.datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp())


def _identity(inspect: dict) -> tuple:
    return (tuple(inspect["RootFS"]["Layers"]), inspect["Created"],
            json.dumps(inspect["Config"].get("Labels") or None, sort_keys=True))


def _load(api, tarball: bytes) -> list:
    messages = list(api.load_image(tarball))
    errors = [m["error"] for m in messages if "error" in m]
    if errors:
        raise docker.errors.APIError("docker load failed: " + "; ".join(errors))
    return messages


# ---------------------------------------------------------------- multi-platform (containerd store)

def load_multiplatform(api, spec: dict, prefix: str) -> dict:
    """Load an OCI layout holding one image index with a manifest per platform."""
    if not is_containerd_store(api):
        raise NotSupported("multi-platform images are not supported on this engine (needs the containerd image store)")
    tag = _tag(prefix, spec["tag"])
    blobs, manifests = {}, []

    def blob(data, media_type, loaded=True, **extra):
        if loaded:
            blobs[_sha(data)] = data
        return {"mediaType": media_type, "digest": _sha(data), "size": len(data), **extra}

    for platform in spec.get("platforms", ["linux/amd64", "linux/arm64"]):
        os_, arch = platform.split("/")[:2]
        missing = platform in spec.get("missing", ())
        contents_loaded = not missing and platform not in spec.get("manifest_only", ())
        layer = _layer_tar(f"{spec['name']}-{arch}", spec.get("size", DEFAULT_LAYER_SIZE), prefix)
        config = _image_config([_sha(layer)], [arch], spec.get("created", DEFAULT_CREATED), spec.get("labels"),
                               ["sh"], arch=arch)
        manifest = _json({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                          "config": blob(config, "application/vnd.oci.image.config.v1+json", contents_loaded),
                          "layers": [blob(layer, "application/vnd.oci.image.layer.v1.tar", contents_loaded)]})
        manifests.append(blob(manifest, "application/vnd.oci.image.manifest.v1+json", not missing,
                              platform={"os": os_, "architecture": arch}))
    index = _json({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                   "manifests": manifests})
    # Without the docker.io/ normalised name, load "succeeds" but the image cannot be inspected by tag.
    repo, version = tag.rsplit(":", 1)
    top = blob(index, "application/vnd.oci.image.index.v1+json", annotations={
        "io.containerd.image.name": f"docker.io/{repo}:{version}", "org.opencontainers.image.ref.name": version})
    entries = [("oci-layout", _json({"imageLayoutVersion": "1.0.0"})),
               ("index.json", _json({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                                     "manifests": [top]})),
               ("blobs", None), ("blobs/sha256", None)]
    entries += [(f"blobs/sha256/{digest[7:]}", data) for digest, data in blobs.items()]
    _load(api, _tar_bytes(entries))
    return {"id": api.inspect_image(tag)["Id"], "tag": tag, "platforms": [m["platform"] for m in manifests]}


# ---------------------------------------------------------------- build cache

def run_build(docker_host: str, spec: dict, prefix: str) -> dict:
    """A BuildKit build of FROM scratch + COPY of generated files, through the buildx CLI plugin."""
    plugins = engines.cli_plugins_dir("28.5")  # sid's buildx drives every flavour's BuildKit, 20.10's too
    if plugins is None or not (plugins / "docker-buildx").exists():
        raise NotSupported("BuildKit builds need the buildx plugin; install the 28.5 flavour (harness.engines)")
    tags = [_tag(prefix, t) for t in spec.get("tags", [])]
    with tempfile.TemporaryDirectory() as tmp:
        config, context = Path(tmp, "config"), Path(tmp, "context")
        (config / "cli-plugins").mkdir(parents=True)
        (config / "cli-plugins" / "docker-buildx").symlink_to(plugins / "docker-buildx")
        context.mkdir()
        lines = ["FROM scratch"]
        for filename, size in sorted(spec.get("files", {"data": DEFAULT_LAYER_SIZE}).items()):
            (context / filename).write_bytes(_payload(f"{prefix}/{spec['name']}/{filename}/{size}", size))
            lines.append(f"COPY {filename} /{filename}")  # one COPY per file: one cache record per layer
        (context / "Dockerfile").write_text("\n".join(lines) + "\n")
        iidfile = Path(tmp, "iid")
        cmd = ["docker", "buildx", "build", "--provenance=false", "--sbom=false", "--iidfile", str(iidfile)]
        for tag in tags:
            cmd += ["-t", tag]
        env = dict(os.environ, DOCKER_HOST=docker_host, DOCKER_CONFIG=str(config), BUILDX_NO_DEFAULT_ATTESTATIONS="1")
        result = subprocess.run(cmd + [str(context)], capture_output=True, text=True, env=env, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"BuildKit build failed on {docker_host}:\n{result.stderr[-2000:]}")
        # On the containerd store the iidfile holds the config digest, not the image (manifest) ID.
        image_id = iidfile.read_text().strip()
    return {"id": client(docker_host).inspect_image(tags[0])["Id"] if tags else image_id, "tags": tags}


def run_classic_build(api: docker.APIClient, spec: dict, prefix: str) -> dict:
    """A legacy-builder build (the API's /build without BuildKit) of FROM scratch + one COPY per file.
    Each step's image stays as the untagged parent of the next; the parents come back nearest first.
    A file's content depends on its name and size only, so builds starting with the same files share steps."""
    files = sorted(spec["files"].items())
    dockerfile = "FROM scratch\n" + "".join(f"COPY {filename} /{filename}\n" for filename, _size in files)
    context = _tar_bytes([("Dockerfile", dockerfile.encode())] + [
        (filename, _payload(f"{prefix}/{filename}/{size}", size)) for filename, size in files])
    tags = [_tag(prefix, t) for t in spec.get("tags", [])]
    output = list(api.build(fileobj=io.BytesIO(context), custom_context=True, tag=tags[0] if tags else None,
                            labels=spec.get("labels"), rm=True, decode=True))
    failures = [line["error"] for line in output if "error" in line]
    if failures:
        raise RuntimeError(f"classic build {spec['name']} failed: {failures}")
    image_id = next(line["aux"]["ID"] for line in output if "ID" in line.get("aux", {}))
    for tag in tags[1:]:
        repository, _sep, version = tag.rpartition(":")
        api.tag(image_id, repository, version)
    parents, parent = [], api.inspect_image(image_id).get("Parent")
    while parent:
        parents.append(parent)
        parent = api.inspect_image(parent).get("Parent")
    return {"id": image_id, "tags": tags, "parents": parents}


# ---------------------------------------------------------------- containers, networks, volumes

def _wait_for_layers_size_to_settle(docker_host, pause=0.5, timeout=15):
    """On the containerd store, LayersSize still counts a legacy build's step snapshots for about a second after the
    build (618,496 B measured for three steps): the judge of bytes must not start from those."""
    deadline = time.monotonic() + timeout
    last = layers_size(docker_host)
    while time.monotonic() < deadline:
        time.sleep(pause)
        now = layers_size(docker_host)
        if now == last:
            return
        last = now
    raise RuntimeError(f"LayersSize of {docker_host} still changed after {timeout} s")


def _wait(api, container_id):
    status = api.wait(container_id, timeout=60)["StatusCode"]
    if status != 0:
        raise RuntimeError(f"scenario container {container_id[:12]} exited with {status}: {api.logs(container_id)!r}")


def _write_cmd(path, size):
    return f"/bin/busybox head -c {size} /dev/urandom > {path}"


def create_container(api, spec: dict, prefix: str, scenario: Scenario) -> str:
    state, size = spec.get("state", "running"), spec.get("writable_bytes", 0)
    if state == "created" and size:
        raise ValueError(f"container {spec['name']}: a created (never started) container cannot hold written data")
    ref = spec["image"]
    if ref in scenario.images:
        image = scenario.images[ref]["id"]
    else:
        image = ref if ref.startswith("sha256:") else _tag(prefix, ref)
    binds, anonymous = [], []
    for volume in spec.get("volumes", []):
        if ":" in volume:
            name, path = volume.split(":", 1)
            binds.append(f"{scenario.volumes.get(name, _name(prefix, name))}:{path}")
        else:
            anonymous.append(volume)
    if state == "running":
        command = ["sleep", "3600"]
    else:
        command = ["sh", "-c", _write_cmd("/data.bin", size) if size else "true"]
    # SIGKILL on stop: sleep as PID 1 ignores SIGTERM, so every stop (and daemon shutdown) would wait 10 s.
    container = api.create_container(
        image, command=command, name=_name(prefix, spec["name"]), labels=spec.get("labels"), stop_signal="SIGKILL",
        volumes=anonymous or None, network_disabled=True,
        host_config=api.create_host_config(network_mode="none", binds=binds or None))["Id"]
    if state == "running":
        api.start(container)
        if size:  # exec_start returns when the write is done, so the size is settled on return
            api.exec_start(api.exec_create(container, ["sh", "-c", _write_cmd("/data.bin", size)])["Id"])
    elif state == "exited":
        api.start(container)
        _wait(api, container)
    elif state != "created":
        raise ValueError(f"container {spec['name']}: unknown state {state!r}")
    return container


def create_volume(api, spec: dict, prefix: str, helper_image: str | None) -> str:
    size, anonymous = spec.get("bytes", 0), spec.get("anonymous", False)
    if not anonymous:
        name = api.create_volume(_name(prefix, spec["name"]), labels=spec.get("labels"))["Name"]
        if not size:
            return name
    if helper_image is None:
        raise ValueError("anonymous volumes and volume data need at least one image in the spec")
    # The engine marks a volume anonymous only when a container asks for one with no name.  The helper is
    # removed without v=True, as `docker rm` does, which leaves the volume unused.
    container = api.create_container(
        helper_image, command=["sh", "-c", _write_cmd("/data/data.bin", size) if size else "true"],
        volumes=["/data"], network_disabled=True,
        host_config=api.create_host_config(network_mode="none", binds=None if anonymous else [f"{name}:/data"]))["Id"]
    if anonymous:
        name = next(m["Name"] for m in api.inspect_container(container)["Mounts"] if m["Destination"] == "/data")
    if size:
        api.start(container)
        _wait(api, container)
    api.remove_container(container)
    return name


# ---------------------------------------------------------------- entry points

def build(docker_host: str, spec: dict, prefix: str = "", workers: int = 1) -> Scenario:
    """Create everything SPEC describes on the engine at DOCKER_HOST; see the module docstring for keys.

    WORKERS > 1 creates the containers that many at a time (about 1.5 times faster for hundreds of them on two
    CPUs), in no set order: only for specs whose containers' creation order does not matter."""
    api = client(docker_host)
    scenario = Scenario(prefix=prefix)
    if spec.get("images"):
        load_images(api, spec["images"], spec.get("layers", {}), prefix, scenario)
    helper = next(iter(scenario.images.values()))["id"] if scenario.images else None
    for mp in spec.get("multiplatform", []):
        scenario.multiplatform[mp["name"]] = load_multiplatform(api, mp, prefix)
    for network in spec.get("networks", []):
        # A bridge with no host address: an addressed one takes a host route, and the engines on one
        # machine then share ~31 default pools ("all predefined address pools have been fully subnetted").
        scenario.networks[network["name"]] = api.create_network(
            _name(prefix, network["name"]), driver="bridge", internal=True, labels=network.get("labels"),
            options={"com.docker.network.bridge.inhibit_ipv4": "true"})["Id"]
    for i, volume in enumerate(spec.get("volumes", [])):
        scenario.volumes[volume.get("name", f"anonymous-{i}")] = create_volume(api, volume, prefix, helper)
    if workers > 1 and len(spec.get("containers", [])) > 1:
        local = threading.local()

        def create(container):
            if not hasattr(local, "api"):
                local.api = client(docker_host)
            return create_container(local.api, container, prefix, scenario)

        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            ids = list(pool.map(create, spec["containers"]))
        scenario.containers.update((c["name"], i) for c, i in zip(spec["containers"], ids))
    else:
        for container in spec.get("containers", []):
            scenario.containers[container["name"]] = create_container(api, container, prefix, scenario)
    for b in spec.get("builds", []):
        scenario.builds[b["name"]] = run_build(docker_host, b, prefix)
    for b in spec.get("classic_builds", []):
        scenario.classic_builds[b["name"]] = run_classic_build(api, b, prefix)
    if spec.get("classic_builds") and is_containerd_store(api):
        _wait_for_layers_size_to_settle(docker_host)
    if spec.get("builds"):
        scenario.build_cache = system_df(docker_host).get("BuildCache") or []
    return scenario


def reload_images(docker_host: str, spec: dict, built: Scenario) -> int:
    """Load again, in one tarball, the images of SPEC (as BUILT made them) that are gone or lost a tag since; the
    number loaded. After a run that removed images, the engine holds the same images, tags and layers again
    (containers, networks and volumes are left as they are), in the time of loading only what is missing."""
    api = client(docker_host)
    listed = {i["Id"]: set(i.get("RepoTags") or []) for i in api.images()}
    missing = [image for image in spec.get("images", [])
               if built.images[image["name"]]["id"] not in listed
               or not set(built.images[image["name"]]["tags"]) <= listed[built.images[image["name"]]["id"]]]
    if missing:
        load_images(api, missing, spec.get("layers", {}), built.prefix, Scenario(prefix=built.prefix))
    return len(missing)


def teardown(docker_host: str, scenario: Scenario):
    """Remove what SCENARIO created (containers first, so images and volumes are free); build cache stays."""
    api = client(docker_host)
    for container in scenario.containers.values():
        api.remove_container(container, force=True, v=True)
    images = [i["id"] for i in scenario.images.values()] + [b["id"] for b in scenario.builds.values()] \
        + [m["id"] for m in scenario.multiplatform.values()] + [b["id"] for b in scenario.classic_builds.values()]
    for image in images:
        try:
            api.remove_image(image, force=True)
        except docker.errors.NotFound:
            pass  # already gone, e.g. two specs that made the same image
    for network in scenario.networks.values():
        api.remove_network(network)
    for volume in scenario.volumes.values():
        api.remove_volume(volume)


def fingerprint(docker_host: str) -> dict:
    """A stable summary of the engine's objects (images with tags and digests, containers with states, networks,
    volumes, build cache records): equal before and after a run that changed nothing."""
    api = client(docker_host)
    return {
        "images": {i["Id"]: {"tags": sorted(t for t in i.get("RepoTags") or [] if t != "<none>:<none>"),
                             "digests": sorted(d for d in i.get("RepoDigests") or [] if d != "<none>@<none>")}
                   for i in api.images(all=True)},
        "containers": {c["Id"]: {"image": c["ImageID"], "state": c["State"]} for c in api.containers(all=True)},
        "networks": {n["Id"]: {"name": n["Name"], "labels": n.get("Labels") or {}} for n in api.networks()},
        "volumes": {v["Name"]: v.get("Labels") or {} for v in api.volumes().get("Volumes") or []},
        "build_cache": sorted(r["ID"] for r in system_df(docker_host).get("BuildCache") or []),
    }


@contextlib.contextmanager
def unchanged(*docker_hosts: str, what: str = "check mode"):
    """Assert that the block changes nothing on any of DOCKER_HOSTS: every check-mode run is wrapped in this."""
    before = {host: fingerprint(host) for host in docker_hosts}
    yield
    for host in docker_hosts:
        assert fingerprint(host) == before[host], f"{what} changed the engine at {host}"


def realistic_mix(seed: int = 0, n_images: int = 24, today: datetime.date | None = None) -> dict:
    """A ready-made spec: repos with several builds each over shared layers, some dangling, some in use
    by running and stopped containers, one protected by PROTECT_LABEL, old and fresh creation times.

    Fresh images are created in the 30 days before TODAY (default: the current UTC date), so their IDs
    change from day to day; pass TODAY for IDs that never change."""
    rng = random.Random(seed)
    today = today or datetime.datetime.now(datetime.timezone.utc).date()
    repos = ["web", "api", "worker", "db-tools", "batch", "cron"]
    spec = {"layers": {"runtime": 3_000_000, "libs": 1_500_000}, "images": [], "containers": [],
            "networks": [{"name": "backend", "labels": {"team": "core"}}],
            "volumes": [{"name": "cache", "labels": {"team": "core"}, "bytes": 200_000},
                        {"anonymous": True, "bytes": 100_000}]}
    for i in range(n_images):
        repo = repos[i % len(repos)]
        build_no = i // len(repos)
        name = f"{repo}-{build_no}"
        if rng.random() < 0.3:
            created = today - datetime.timedelta(days=rng.randrange(1, 30))
        else:
            created = datetime.date(rng.randrange(2019, 2024), rng.randrange(1, 13), 15)
        own = f"{name}-own"
        spec["layers"][own] = rng.randrange(50_000, 400_000)
        # Shared layers are a common prefix: runtime for every image, libs for half of the repos.
        chain = ["runtime"] + (["libs"] if repos.index(repo) % 2 else []) + [own]
        newest = build_no == (n_images - 1 - i % len(repos)) // len(repos)
        tags = [f"lab/{repo}:{build_no}"] + ([f"lab/{repo}:latest", f"mirror/{repo}:latest"] if newest else [])
        if rng.random() < 0.15 and not newest:
            tags = []  # dangling: an old build whose tag moved on
        spec["images"].append({"name": name, "tags": tags, "layers": chain,
                               "created": f"{created.isoformat()}T12:00:00Z",
                               "labels": {"repo": repo, **(PROTECT_LABEL if i == 1 else {})}})
    tagged = [image for image in spec["images"] if image["tags"]]
    dangling = [image for image in spec["images"] if not image["tags"]]
    for i, image in enumerate(tagged[:4]):
        spec["containers"].append({"name": f"run-{i}", "image": image["tags"][0], "state": "running",
                                   "writable_bytes": 10_000 * (i + 1), "labels": {"role": "service"}})
    for i, image in enumerate(tagged[4:6]):
        spec["containers"].append({"name": f"stopped-{i}", "image": image["tags"][0], "state": "exited",
                                   "writable_bytes": 50_000})
    if dangling:  # a dangling image kept alive by a stopped container, created by ID
        spec["containers"].append({"name": "stopped-dangling", "image": dangling[0]["name"], "state": "exited"})
    return spec


def ci_host(n_images: int = 1000, seed: int = 0, repos: int = 20, dangling: float = 0.3,
            container_share: float = 0.06) -> dict:
    """A busy CI host, the shape of issue 14: N_IMAGES images as REPOS repositories of N_IMAGES / REPOS builds
    each, every image on the shared busybox ``base`` layer plus one layer per repository, so the builds of a
    repository differ by their config only (created time, labels). A DANGLING share of them is untagged (old
    builds whose tag moved on; the newest build of a repository keeps its tags and ``:latest``), and
    CONTAINER_SHARE of N_IMAGES containers (at least 2) use random images, tagged or not: half running, half
    exited with a few written bytes. At 1,000 images: 50 builds per repository, 300 dangling, 60 containers.

    Only REPOS + 1 layers exist, so the tarball stays small at any N_IMAGES and one load makes them all."""
    rng = random.Random(seed)
    builds = max(1, n_images // repos)
    spec = {"layers": {}, "images": [], "containers": []}
    names = [f"repo{r:02d}" for r in range(repos)]
    for r, repo in enumerate(names):
        spec["layers"][f"{repo}-layer"] = rng.randrange(1_000_000, 4_000_000)
    for b in range(builds):
        for r, repo in enumerate(names):
            if len(spec["images"]) == n_images:
                break
            created = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc) \
                + datetime.timedelta(hours=6 * b, minutes=r)
            spec["images"].append({
                "name": f"{repo}-{b}", "layers": [f"{repo}-layer"], "tags": [f"ci/{repo}:{b}"],
                "created": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "labels": {"repo": repo, "build": str(b), "commit": f"{rng.getrandbits(64):016x}"}})
    newest = {}
    for image in spec["images"]:
        newest[image["labels"]["repo"]] = image
    for image in newest.values():
        image["tags"].append(f"ci/{image['labels']['repo']}:latest")
    older = [image for image in spec["images"] if image not in newest.values()]
    for image in rng.sample(older, min(len(older), round(dangling * len(spec["images"])))):
        image["tags"] = []
    n_containers = max(2, round(container_share * len(spec["images"])))
    for i, image in enumerate(rng.sample(spec["images"], min(n_containers, len(spec["images"])))):
        running = i % 2 == 0
        spec["containers"].append({"name": f"job-{i}", "image": image["name"],
                                   "state": "running" if running else "exited",
                                   "writable_bytes": 0 if running else 10_000})
    return spec
