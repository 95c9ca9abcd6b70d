//! Build script: napi's linker settings for a Node addon.

fn main() {
    napi_build::setup();
}
