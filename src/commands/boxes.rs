//! `box box add|list|remove|prune|build`: the local box store from the
//! command line. The store itself lives in `crate::boxes`.

use anyhow::Context as _;

use crate::boxes::{with_hint, AddOptions, BoxImage, Checksum, Recipe, Store};
use crate::cli::BoxCommand;
use crate::error::ExitStatus;

use super::Settings;

pub(crate) async fn run(g: &Settings, args: BoxCommand) -> anyhow::Result<ExitStatus> {
    let store = Store::open(&g.paths)
        .map_err(with_hint)
        .context("cannot open the box store")?;
    let p = &g.printer;
    match args {
        BoxCommand::Add(a) => {
            let options = AddOptions {
                name: a.name,
                checksum: a
                    .checksum
                    .as_deref()
                    .map(Checksum::parse)
                    .transpose()
                    .map_err(with_hint)?,
                force: a.force,
            };
            let image = store
                .add(&a.source, &options, p)
                .await
                .with_context(|| format!("cannot add box {}", a.source))?;
            p.info(&format!("box `{}` {} is ready", image.name, image.version));
        }
        BoxCommand::List(a) => {
            let boxes = store.list().map_err(with_hint)?;
            if a.json {
                p.data(&serde_json::to_string_pretty(&boxes)?);
            } else if boxes.is_empty() {
                p.info("no boxes yet; `box box add NAME|FILE|URL` or `box box build boxes/debian-12` adds one");
            } else {
                print_table(g, &boxes);
            }
        }
        BoxCommand::Remove(a) => {
            let removed = store
                .remove(&a.name, a.version.as_deref(), p)
                .map_err(with_hint)
                .with_context(|| format!("cannot remove box `{}`", a.name))?;
            for image in removed {
                p.info(&format!("removed box `{}` {}", image.name, image.version));
            }
        }
        BoxCommand::Prune => {
            let removed = store.prune(&[], p).map_err(with_hint)?;
            if removed.is_empty() {
                p.info("nothing to prune: every box version is the newest or in use");
            }
            for image in removed {
                p.info(&format!("removed box `{}` {}", image.name, image.version));
            }
        }
        BoxCommand::Build(a) => {
            let recipe = Recipe::from_dir(&g.cwd.join(&a.recipe)).map_err(with_hint)?;
            let lock = store.lock_async(&recipe.name, p).await.map_err(with_hint)?;
            let image = recipe
                .build(&store, &lock, p)
                .await
                .map_err(with_hint)
                .with_context(|| format!("cannot build box `{}`", recipe.name))?;
            p.info(&format!(
                "built box `{}` {} ({})",
                image.name,
                image.version,
                image.disk.display()
            ));
        }
    }
    Ok(ExitStatus::Success)
}

fn print_table(g: &Settings, boxes: &[BoxImage]) {
    let rows: Vec<[String; 5]> = boxes
        .iter()
        .map(|b| {
            let size = std::fs::metadata(&b.disk).map(|m| m.len()).unwrap_or(0);
            [
                b.name.clone(),
                b.version.clone(),
                b.provider.to_string(),
                format!("{} MB", size / 1_000_000),
                b.cloudstack_template.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let header = ["NAME", "VERSION", "PROVIDER", "SIZE", "CLOUDSTACK TEMPLATE"].map(String::from);
    let mut widths = [0usize; 5];
    for row in std::iter::once(&header).chain(rows.iter()) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    for row in std::iter::once(&header).chain(rows.iter()) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        g.printer.data(line.join("  ").trim_end());
    }
}
