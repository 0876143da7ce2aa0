use super::*;
use candle_core::{Device, Var};

fn tiny() -> HrmNetConfig {
    HrmNetConfig {
        features: 3,
        window: 4,
        account: 2,
        d_model: 8,
        heads: 2,
        h_layers: 1,
        l_layers: 1,
        h_cycles: 2,
        l_cycles: 2,
        instruments: 2,
        timeframes: 1,
        instrument_embedding: 64,
        timeframe_embedding: 32,
    }
}

fn inputs(b: usize) -> (Tensor, Tensor, Tensor, Tensor) {
    let d = Device::Cpu;
    let window = Tensor::randn(0f32, 1.0, (b, 4, 3), &d).unwrap();
    let account = Tensor::randn(0f32, 1.0, (b, 2), &d).unwrap();
    let inst = Tensor::new((0..b as u32).map(|i| i % 2).collect::<Vec<_>>(), &d).unwrap();
    let tf = Tensor::new(vec![0u32; b], &d).unwrap();
    (window, account, inst, tf)
}

fn loss(out: &SegmentOutput) -> Tensor {
    let heads = [&out.value, &out.raw_alpha, &out.raw_beta, &out.q_halt, &out.q_continue];
    let mut total = (out.logits.sqr().unwrap().sum_all().unwrap() * 1e4).unwrap();
    for h in heads {
        total = (total + h.sum_all().unwrap()).unwrap();
    }
    total
}

fn grads_by_name(p: &Params, loss: &Tensor) -> Vec<(String, Option<Vec<f32>>)> {
    let grads = loss.backward().unwrap();
    p.named_vars()
        .into_iter()
        .map(|(n, v)| {
            let g = grads
                .get(v.as_tensor())
                .map(|g| g.flatten_all().unwrap().to_vec1::<f32>().unwrap());
            (n, g)
        })
        .collect()
}

#[test]
fn shapes_and_the_q_head_starts_by_continuing_evenly() {
    let mut p = Params::new(3, Device::Cpu);
    let net = HrmNet::new(&mut p, tiny()).unwrap();
    let (w, a, i, t) = inputs(5);
    let x = net.embed(&w, &a, &i, &t).unwrap();
    assert_eq!(x.dims(), &[5, 5, 8]);
    let carry = net.initial_carry(5).unwrap();
    let (next, out) = net.segment(&carry, &x, Gradient::OneStep).unwrap();
    assert_eq!(out.logits.dims(), &[5, 5]);
    assert_eq!(out.value.dims(), &[5]);
    assert_eq!(next.z_h.dims(), &[5, 5, 8]);
    // Weight 0, bias -5: both Q logits are -5 whatever the input.
    for q in [out.q_halt, out.q_continue] {
        assert!(q.to_vec1::<f32>().unwrap().iter().all(|v| (*v + 5.0).abs() < 1e-6));
    }
    // The carry leaves the segment detached (deep supervision).
    assert!(!next.z_h.track_op() && !next.z_l.track_op());
    // 27M preset: the paper's size by algorithms.md's count.
    let mut big = Params::new(1, Device::Cpu);
    let cfg = HrmNetConfig {
        d_model: 512,
        heads: 8,
        h_layers: 4,
        l_layers: 4,
        window: 2,
        ..tiny()
    };
    HrmNet::new(&mut big, cfg).unwrap();
    let blocks: usize = big
        .named_vars()
        .iter()
        .filter(|(n, _)| n.starts_with("h.") || n.starts_with("l."))
        .map(|(_, v)| v.elem_count())
        .sum();
    assert_eq!(blocks, 8 * 3_407_872);
}

/// The one-step gradient equals backpropagation through exactly the final
/// L and H steps from states computed without gradient, and differs from
/// full backpropagation through time.
#[test]
fn gradients_reach_only_the_final_steps() {
    let mut p = Params::new(11, Device::Cpu);
    let net = HrmNet::new(&mut p, tiny()).unwrap();
    let (w, a, i, t) = inputs(3);
    let x = net.embed(&w, &a, &i, &t).unwrap();
    let carry = net.initial_carry(3).unwrap();

    let (_, one) = net.segment(&carry, &x, Gradient::OneStep).unwrap();
    let one_step = grads_by_name(&p, &loss(&one));

    // Reference: N*T - 1 L steps and N - 1 H steps on plain values, then
    // the last L and H step with gradient.
    let (mut zh, mut zl) = (carry.z_h.clone(), carry.z_l.clone());
    let steps = 4;
    for s in 1..steps {
        zl = net
            .l_module
            .forward(&zl, &(&zh + &x).unwrap(), &net.rotary)
            .unwrap()
            .detach();
        if s % 2 == 0 {
            zh = net.h_module.forward(&zh, &zl, &net.rotary).unwrap().detach();
        }
    }
    let zl = net.l_module.forward(&zl, &(&zh + &x).unwrap(), &net.rotary).unwrap();
    let zh = net.h_module.forward(&zh, &zl, &net.rotary).unwrap();
    let reference = grads_by_name(&p, &loss(&net.heads(&zh).unwrap()));
    assert_eq!(
        one_step, reference,
        "one-step gradient differs from the last-step reference"
    );

    let (_, full) = net.segment(&carry, &x, Gradient::Full).unwrap();
    let bptt = grads_by_name(&p, &loss(&full));
    let l_weight = |g: &[(String, Option<Vec<f32>>)]| {
        g.iter()
            .find(|(n, _)| n == "l.block0.qkv.weight")
            .and_then(|(_, v)| v.clone())
            .expect("the L module gets a gradient")
    };
    let (a, b) = (l_weight(&one_step), l_weight(&bptt));
    let diff: f32 = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).sum();
    let scale: f32 = b.iter().map(|y| y.abs()).sum();
    assert!(
        diff > 1e-3 * scale,
        "full BPTT should add the earlier steps' terms: {diff} vs {scale}"
    );
    // Every parameter still learns under the one-step gradient.
    let missing: Vec<_> = one_step.iter().filter(|(_, g)| g.is_none()).map(|(n, _)| n).collect();
    assert!(missing.is_empty(), "no gradient for {missing:?}");
}

#[test]
fn the_graph_of_a_one_step_segment_does_not_grow_with_cycles() {
    // Nodes reachable from the loss (what backward keeps alive): constant
    // in N x T for the one-step gradient, linear for full BPTT.
    let mut sizes = Vec::new();
    for cycles in [1, 4] {
        for gradient in [Gradient::OneStep, Gradient::Full] {
            let mut p = Params::new(2, Device::Cpu);
            let cfg = HrmNetConfig {
                h_cycles: cycles,
                ..tiny()
            };
            let net = HrmNet::new(&mut p, cfg).unwrap();
            let (w, a, i, t) = inputs(2);
            let x = net.embed(&w, &a, &i, &t).unwrap();
            let (_, out) = net.segment(&net.initial_carry(2).unwrap(), &x, gradient).unwrap();
            sizes.push(loss(&out).sorted_nodes().len());
        }
    }
    let (one_small, full_small, one_big, full_big) = (sizes[0], sizes[1], sizes[2], sizes[3]);
    assert_eq!(one_small, one_big, "one-step graph grew with N: {sizes:?}");
    assert!(full_big > 2 * full_small, "full BPTT graph should grow: {sizes:?}");
}

#[test]
fn same_seed_same_model_and_outputs() {
    let run = || {
        let mut p = Params::new(7, Device::Cpu);
        let net = HrmNet::new(&mut p, tiny()).unwrap();
        let w = Tensor::ones((2, 4, 3), DType::F32, &Device::Cpu).unwrap();
        let a = Tensor::zeros((2, 2), DType::F32, &Device::Cpu).unwrap();
        let i = Tensor::new(&[0u32, 1], &Device::Cpu).unwrap();
        let t = Tensor::new(&[0u32, 0], &Device::Cpu).unwrap();
        let x = net.embed(&w, &a, &i, &t).unwrap();
        let (_, out) = net
            .segment(&net.initial_carry(2).unwrap(), &x, Gradient::OneStep)
            .unwrap();
        (
            out.logits.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            net.z_h_init.to_vec1::<f32>().unwrap(),
        )
    };
    assert_eq!(run(), run());
}

#[test]
fn a_variable_input_gets_its_gradient_through_the_last_steps() {
    // Guards the fused dense kernel's "no gradient for data" shortcut: the
    // injected input is a variable here and must receive a gradient.
    let mut p = Params::new(4, Device::Cpu);
    let net = HrmNet::new(&mut p, tiny()).unwrap();
    let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (2, 5, 8), &Device::Cpu).unwrap()).unwrap();
    let (_, out) = net
        .segment(&net.initial_carry(2).unwrap(), x.as_tensor(), Gradient::OneStep)
        .unwrap();
    let grads = loss(&out).backward().unwrap();
    let g = grads.get(x.as_tensor()).expect("gradient for the input");
    assert!(g.abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap() > 0.0);
}

/// The agent's two-pass update (states first without gradient, then each
/// segment's final step back-propagated on its own and the gradients
/// summed) gives the gradient of the summed segment losses in one pass.
#[test]
fn per_segment_backward_equals_one_backward_over_all_segments() {
    let mut p = Params::new(5, Device::Cpu);
    let net = HrmNet::new(&mut p, tiny()).unwrap();
    let (w, a, i, t) = inputs(3);
    let x = net.embed(&w, &a, &i, &t).unwrap();
    let segments = 3;

    let mut carry = net.initial_carry(3).unwrap();
    let mut total: Option<Tensor> = None;
    for _ in 0..segments {
        let (next, out) = net.segment(&carry, &x, Gradient::OneStep).unwrap();
        carry = next;
        let l = loss(&out);
        total = Some(match total {
            None => l,
            Some(acc) => (acc + l).unwrap(),
        });
    }
    let one_pass = grads_by_name(&p, &total.unwrap());

    let plain = x.detach();
    let mut carry = net.initial_carry(3).unwrap();
    let mut ahead = Vec::new();
    for _ in 0..segments {
        let states = net.think_ahead(&carry, &plain).unwrap();
        carry = net.final_step(&states, &plain).unwrap().0;
        ahead.push(states);
    }
    let mut acc: Option<candle_core::backprop::GradStore> = None;
    for states in &ahead {
        let g = loss(&net.final_step(states, &x).unwrap().1).backward().unwrap();
        match acc.as_mut() {
            None => acc = Some(g),
            Some(a) => a.extend(g).unwrap(),
        }
    }
    let acc = acc.unwrap();
    for (name, var) in p.named_vars() {
        let a = acc
            .get(var.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let b = one_pass.iter().find(|(n, _)| *n == name).unwrap().1.clone().unwrap();
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "{name}: {x} vs {y}");
        }
    }
}

#[test]
fn plain_inference_matches_the_candle_path() {
    let cfg = HrmNetConfig { h_layers: 2, ..tiny() };
    let mut p = Params::new(21, Device::Cpu);
    let net = HrmNet::new(&mut p, cfg).unwrap();
    let (w, a, i, t) = inputs(3);
    let x = net.embed(&w, &a, &i, &t).unwrap();
    let mut plain = infer::HrmInference::from_net(&net).unwrap();
    let px = plain.embed(
        &w.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        &a.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        &i.to_vec1::<u32>().unwrap(),
        &t.to_vec1::<u32>().unwrap(),
    );
    let close = |a: &[f32], b: &[f32], what: &str| {
        assert_eq!(a.len(), b.len(), "{what}");
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "{what}: {x} vs {y}");
        }
    };
    close(&px, &x.flatten_all().unwrap().to_vec1::<f32>().unwrap(), "embedding");
    let mut carry = net.initial_carry(3).unwrap();
    let (mut zh, mut zl) = plain.initial(3);
    for segment in 0..3 {
        let (next, out) = net.segment(&carry, &x, Gradient::OneStep).unwrap();
        carry = next;
        let po = plain.segment(&mut zh, &mut zl, &px, 3);
        let v = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        close(&po.logits, &v(&out.logits), &format!("logits {segment}"));
        close(&po.value, &v(&out.value), "value");
        close(&po.raw_alpha, &v(&out.raw_alpha), "alpha");
        close(&po.q_halt, &v(&out.q_halt), "q");
        close(&zh, &v(&carry.z_h), "z_h");
        close(&zl, &v(&carry.z_l), "z_l");
    }
}
