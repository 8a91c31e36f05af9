//! The cost of one `pick` for each balancer at 2, 50 and 500 servers: the only balancer work
//! on the request path.
//!
//! Run with `cargo bench --bench balance_pick`.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use pylon::balance::{ConnCounts, PickContext, ServerSet, ServerView, new_balancer};
use pylon::config::model::{Balance, HashType};

fn servers(n: usize) -> ServerSet {
    ServerSet {
        servers: (0..n)
            .map(|i| ServerView { weight: (i % 4 + 1) as u32, backup: false, up: true, maxconn: Some(1000) })
            .collect(),
        all_backups: false,
    }
}

fn bench_pick(c: &mut Criterion) {
    let mut group = c.benchmark_group("pick");
    for algo in [Balance::RoundRobin, Balance::StaticRr, Balance::LeastConn, Balance::First, Balance::Source] {
        for n in [2, 50, 500] {
            let set = servers(n);
            let conns = ConnCounts::new(n);
            for i in 0..n {
                for _ in 0..(i % 7) {
                    conns.acquire(i);
                }
            }
            let mut balancer = new_balancer(&algo, HashType::MapBased, &[], &set);
            let mut client = 0u32;
            group.bench_with_input(BenchmarkId::new(algo.name(), n), &n, |b, _| {
                b.iter(|| {
                    client = client.wrapping_add(1);
                    let ctx = PickContext { client: Some(IpAddr::V4(Ipv4Addr::from(client))), avoid: None, key: None };
                    black_box(balancer.pick(black_box(&set), &conns, &ctx))
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_pick);
criterion_main!(benches);
