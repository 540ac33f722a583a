"""A real RTSP server for the stream tests: Debian's GStreamer RTSP server, run by the system Python.

Started by tests/helpers/stream_fixtures.py with ``/usr/bin/python3 tests/helpers/rtsp_server.py ...`` (the
system Python has the GObject bindings; the project's virtualenv has not, and needs not). It serves a video
the test made, as H.264 like an IP camera (MJPEG when the OpenH264 encoder is absent), looped for
ever, paced at its frame rate, optionally behind basic authentication (user:password in the URL).

Frames come from FRAMES_FILE: JPEG images, each prefixed by its length (4 bytes, big-endian), written
by the fixture from any video with OpenCV. Prints ``READY <port>`` once it listens. No numpy or
OpenCV needed here: GStreamer decodes the JPEGs.
"""

from __future__ import annotations

import argparse
import os
import signal
import struct
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def read_frames(path: str) -> list[bytes]:
    frames = []
    with open(path, "rb") as f:
        while header := f.read(4):
            (size,) = struct.unpack(">I", header)
            frames.append(f.read(size))
    if not frames:
        sys.exit(f"{path}: no frames")
    return frames


class LoopFactory(GstRtspServer.RTSPMediaFactory):
    """One pipeline per client, each starting at frame 0 with a key frame; frames loop for ever."""

    def __init__(self, frames: list[bytes], width: int, height: int, fps: int) -> None:
        super().__init__()
        self.frames, self.fps = frames, fps
        self.duration = Gst.SECOND // fps
        caps = f"image/jpeg,width={width},height={height},framerate={fps}/1"
        if Gst.ElementFactory.find("openh264enc") is not None:
            # gop-size = 1 s of frames: a client (re)joining waits at most a second for a key frame.
            encode = (
                f"jpegdec ! videoconvert ! video/x-raw,format=I420 ! openh264enc gop-size={fps} "
                "bitrate=1000000 ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1"
            )
        else:
            encode = "jpegparse ! rtpjpegpay name=pay0 pt=26"
        self.launch = f"( appsrc name=src is-live=true block=true format=time caps={caps} ! {encode} )"

    def do_create_element(self, url):  # noqa: N802 (GObject virtual method)
        return Gst.parse_launch(self.launch)

    def do_configure(self, media):  # noqa: N802
        state = {"n": 0}
        src = media.get_element().get_child_by_name("src")

        def need_data(appsrc, _length):
            data = self.frames[state["n"] % len(self.frames)]
            buf = Gst.Buffer.new_wrapped(data)
            buf.pts = buf.dts = state["n"] * self.duration
            buf.duration = self.duration
            state["n"] += 1
            appsrc.emit("push-buffer", buf)

        src.connect("need-data", need_data)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("frames_file")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--width", type=int, required=True)
    parser.add_argument("--height", type=int, required=True)
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--mount", default="/stream")
    parser.add_argument("--user", default=None)
    parser.add_argument("--password", default=None)
    args = parser.parse_args()

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = LoopFactory(read_frames(args.frames_file), args.width, args.height, args.fps)
    if args.user:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", args.user)
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password or ""), token)
        server.set_auth(auth)
        permissions = GstRtspServer.RTSPPermissions()
        permissions.add_permission_for_role(args.user, "media.factory.access", True)
        permissions.add_permission_for_role(args.user, "media.factory.construct", True)
        factory.set_permissions(permissions)
    server.get_mount_points().add_factory(args.mount, factory)
    if server.attach(None) == 0:
        sys.exit(f"cannot listen on 127.0.0.1:{args.port}")

    loop = GLib.MainLoop()
    parent = os.getppid()

    def parent_alive() -> bool:  # a test run that died must not leave the server behind
        if os.getppid() != parent:
            loop.quit()
            return False
        return True

    GLib.timeout_add_seconds(1, parent_alive)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, loop.quit)
    print(f"READY {args.port}", flush=True)
    loop.run()


if __name__ == "__main__":
    main()
