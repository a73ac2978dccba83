{
  "targets": [
    {
      "target_name": "flatnet",
      "sources": [
        "native/addon.cc",
        "native/packet.cc",
        "native/checksum.cc",
        "native/partial_checksum.cc",
        "native/gso.cc",
        "native/gro.cc",
        "native/vxlan.cc",
        "native/fib.cc",
        "native/peer_index.cc",
        "native/steering.cc",
        "native/tun.cc",
        "native/udp.cc",
        "native/worker.cc",
        "native/dataplane.cc",
        "native/handover.cc",
        "native/admit.cc",
        "native/js_table.cc",
        "native/nflog.cc",
        "native/nflog_js.cc",
        "native/prober.cc",
        "native/prober_js.cc",
        "native/blake2s_mac.cc",
        "native/spawn.cc",
        "native/wg_session.cc",
        "native/wg_table.cc",
        "native/wg_js.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")"
      ],
      "defines": [
        "NAPI_DISABLE_CPP_EXCEPTIONS",
        "NAPI_VERSION=8"
      ],
      "cflags_cc": [
        "-std=c++20",
        "-O3",
        "-Wall",
        "-Wextra",
        "-fno-exceptions",
        "-pthread"
      ],
      "cflags_cc!": [
        "-fno-rtti",
        "-std=gnu++17"
      ],
      "ldflags": [
        "-pthread"
      ]
    },
    {
      "target_name": "flatnet_testing",
      "sources": [
        "native/addon.cc",
        "native/testing.cc",
        "native/testing_fib.cc",
        "native/testing_steering.cc",
        "native/testing_raw.cc",
        "native/testing_wg.cc",
        "native/packet.cc",
        "native/checksum.cc",
        "native/partial_checksum.cc",
        "native/gso.cc",
        "native/gro.cc",
        "native/vxlan.cc",
        "native/fib.cc",
        "native/peer_index.cc",
        "native/steering.cc",
        "native/tun.cc",
        "native/udp.cc",
        "native/worker.cc",
        "native/dataplane.cc",
        "native/handover.cc",
        "native/admit.cc",
        "native/js_table.cc",
        "native/nflog.cc",
        "native/nflog_js.cc",
        "native/prober.cc",
        "native/prober_js.cc",
        "native/blake2s_mac.cc",
        "native/spawn.cc",
        "native/wg_session.cc",
        "native/wg_table.cc",
        "native/wg_js.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")"
      ],
      "defines": [
        "NAPI_DISABLE_CPP_EXCEPTIONS",
        "NAPI_VERSION=8",
        "FLATNET_TESTING"
      ],
      "cflags_cc": [
        "-std=c++20",
        "-O3",
        "-Wall",
        "-Wextra",
        "-fno-exceptions",
        "-pthread"
      ],
      "cflags_cc!": [
        "-fno-rtti",
        "-std=gnu++17"
      ],
      "ldflags": [
        "-pthread"
      ]
    },
    {
      "target_name": "flatnet-cni",
      "type": "executable",
      "sources": [
        "native/cni/flatnet_cni.cc"
      ],
      "cflags_cc": [
        "-std=c++20",
        "-O2",
        "-Wall",
        "-Wextra",
        "-fno-exceptions"
      ],
      "cflags_cc!": [
        "-fno-rtti",
        "-std=gnu++17"
      ],
      "ldflags": [
        "-static",
        "-s"
      ]
    }
  ]
}
