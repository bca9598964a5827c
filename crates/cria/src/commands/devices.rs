//! `cria devices`: the GPU adapters wgpu finds (Vulkan; Metal, DX12 on their platforms).

/// Arguments of `cria devices`.
#[derive(clap::Args)]
pub struct Args {
    /// Print one JSON object per adapter.
    #[arg(long)]
    json: bool,
}

/// Lists each adapter as `gpu:N`, with its type, backend, driver, f16 and subgroup support; software
/// adapters (lavapipe, WARP) are marked, as `--device auto` never picks them.
pub fn run(args: Args) -> anyhow::Result<()> {
    let adapters = cria_gpu::list_adapters();
    if adapters.is_empty() && !args.json {
        println!("no GPU adapter found (no Vulkan loader or driver?): models run on the CPU");
    }
    for a in adapters {
        if args.json {
            let json = serde_json::json!({
                "device": format!("gpu:{}", a.index), "name": a.name, "type": a.kind, "backend": a.backend,
                "driver": a.driver, "software": a.software, "f16": a.f16, "subgroups": a.subgroups,
                "max_binding_bytes": a.max_binding,
            });
            println!("{json}");
        } else {
            println!("{a}");
        }
    }
    Ok(())
}
