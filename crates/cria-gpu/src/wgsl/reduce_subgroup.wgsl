// Workgroup-wide sum and max with subgroup operations: each subgroup reduces in registers, then one value per
// subgroup goes through workgroup memory. `sg_index`, `sg_count`, `sg_lane` are set by the kernel's entry
// point from its `subgroup_id`, `num_subgroups`, `subgroup_invocation_id` builtins (kernels.rs fills them in).
var<workgroup> red: array<f32, 64>;
var<private> sg_index: u32;
var<private> sg_count: u32;
var<private> sg_lane: u32;

fn reduce_sum(lid: u32, v: f32) -> f32 {
    let s = subgroupAdd(v);
    if (sg_lane == 0u) {
        red[sg_index] = s;
    }
    workgroupBarrier();
    var r = 0.0;
    for (var i = 0u; i < sg_count; i++) {
        r += red[i];
    }
    workgroupBarrier();
    return r;
}

fn reduce_max(lid: u32, v: f32) -> f32 {
    let s = subgroupMax(v);
    if (sg_lane == 0u) {
        red[sg_index] = s;
    }
    workgroupBarrier();
    var r = -3.0e38;
    for (var i = 0u; i < sg_count; i++) {
        r = max(r, red[i]);
    }
    workgroupBarrier();
    return r;
}
