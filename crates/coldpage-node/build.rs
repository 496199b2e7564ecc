//! Links the addon against the Node-API symbols the host process provides.
//! Also records the target triple, which `coldpage doctor` names.
fn main() {
    napi_build::setup();
    let target = std::env::var("TARGET").expect("cargo sets TARGET for build scripts");
    println!("cargo:rustc-env=COLDPAGE_BUILD_TARGET={target}");
}
