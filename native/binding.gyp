{
  "targets": [
    {
      "target_name": "forkcast",
      "sources": [
        "src/addon.cpp",
        "src/threadpool.cpp",
        "src/quants.cpp",
        "src/matmul.cpp",
        "src/attention.cpp",
        "src/forward.cpp",
        "src/activations.cpp"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_CPP_EXCEPTIONS_ALL"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      # GCC 12's AVX-512 intrinsics seed results with _mm512_undefined_*() and then warn about it at every
      # use (-Wuninitialized false positives that bury real warnings in the build log).
      "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "-ffp-contract=fast", "-fno-math-errno",
                    "-Wno-uninitialized", "-Wno-maybe-uninitialized"],
      "conditions": [
        ["target_arch=='x64'", { "cflags_cc": [] }]
      ]
    }
  ]
}
