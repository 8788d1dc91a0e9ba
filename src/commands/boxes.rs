//! `box box add|list|remove|prune|build`: the local box store from the
//! command line. The store itself lives in `crate::boxes`.

use anyhow::Context as _;

use guest::store::compare_versions;

use crate::boxes::{with_hint, AddOptions, BoxImage, BoxRef, Checksum, Recipe, Store};
use crate::boxfile::Machine;
use crate::cli::BoxCommand;
use crate::error::{ExitStatus, Hinted};
use crate::lockfile::{self, Lockfile, Policy};
use crate::provider::ProviderKind;

use super::workspace::Workspace;
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
            let removed = store.prune(&locked_here(g)?, p).map_err(with_hint)?;
            if removed.is_empty() {
                p.info("nothing to prune: every box version is the newest, in use or locked here");
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
        BoxCommand::Outdated(a) => outdated(g, &store, a.json)?,
        BoxCommand::Update(a) => update(g, &store, a.name).await?,
        BoxCommand::Publish(a) => super::publish::run(g, &store, a).await?,
    }
    Ok(ExitStatus::Success)
}

/// The box versions the Boxfile.lock of the project here (if any) names:
/// `prune` keeps them, so the next `box up` finds them.
fn locked_here(g: &Settings) -> anyhow::Result<Vec<BoxRef>> {
    let Some(root) = crate::project::find_root(&g.cwd) else {
        return Ok(Vec::new());
    };
    let lock = Lockfile::load(&lockfile::path_in(&root))
        .map_err(super::lock::hinted)?
        .unwrap_or_default();
    Ok(lock
        .machine
        .into_values()
        .filter_map(|m| m.local)
        .map(|l| BoxRef {
            name: l.box_name,
            version: l.version,
        })
        .collect())
}

/// A local machine whose locked box has newer versions in the store.
#[derive(Debug, serde::Serialize)]
struct Outdated {
    machine: String,
    #[serde(rename = "box")]
    box_name: String,
    locked: String,
    /// The newest version that meets the machine's `box_version`.
    newest: String,
}

/// `box box outdated`: for each machine in Boxfile.lock, the newest version
/// in the store that its `box_version` allows, when newer than the locked one.
fn outdated(g: &Settings, store: &Store, json: bool) -> anyhow::Result<()> {
    let mut ws = Workspace::load(g)?;
    super::lock::open(&mut ws, Policy::Write)?;
    let lock = ws.ctx.lockfile.snapshot();
    let mut rows = Vec::new();
    for (machine, entry) in &lock.machine {
        let Some(pin) = &entry.local else { continue };
        let wanted = ws
            .ctx
            .project
            .machine(machine)
            .and_then(|m| m.box_version.clone());
        let newest = store
            .newest_meeting(&pin.box_name, wanted.as_ref())
            .map_err(with_hint)?;
        if let Some(newest) = newest
            .filter(|n| compare_versions(&n.version, &pin.version) == std::cmp::Ordering::Greater)
        {
            rows.push(Outdated {
                machine: machine.clone(),
                box_name: pin.box_name.clone(),
                locked: pin.version.clone(),
                newest: newest.version,
            });
        }
    }
    let p = &g.printer;
    if json {
        p.data(&serde_json::to_string_pretty(&rows)?);
    } else if rows.is_empty() {
        p.info("every machine in Boxfile.lock has the newest box version the store holds");
    } else {
        let table: Vec<[String; 4]> = rows
            .iter()
            .map(|r| {
                [
                    r.machine.clone(),
                    r.box_name.clone(),
                    r.locked.clone(),
                    r.newest.clone(),
                ]
            })
            .collect();
        print_rows(g, ["MACHINE", "BOX", "LOCKED", "NEWEST"], &table);
        p.info("`box box update [NAME]` moves the lock to the newest");
    }
    Ok(())
}

/// `box box update [NAME]`: gets a newer version of each box the project's
/// local machines use (again from where it came: its URL, file or recipe),
/// then moves their Boxfile.lock entries to the newest version each
/// machine's `box_version` allows.
async fn update(g: &Settings, store: &Store, name: Option<String>) -> anyhow::Result<()> {
    let mut ws = Workspace::load(g)?;
    ws.lock()?;
    let machines: Vec<Machine> = ws
        .ctx
        .project
        .machines
        .iter()
        .filter(|m| m.provider == ProviderKind::Local)
        .filter(|m| name.as_ref().is_none_or(|n| *n == m.box_name))
        .cloned()
        .collect();
    if machines.is_empty() {
        anyhow::bail!(Hinted::new(
            match &name {
                Some(n) => format!("no local machine of this Boxfile uses box `{n}`"),
                None => "this Boxfile has no local machine".to_string(),
            },
            "`box box add` adds a box to the store without a Boxfile"
        ));
    }
    let mut boxes: Vec<&str> = machines.iter().map(|m| m.box_name.as_str()).collect();
    boxes.sort_unstable();
    boxes.dedup();
    for b in boxes {
        fetch_again(g, store, b).await?;
    }
    let names = machines.iter().map(|m| m.name.clone()).collect();
    super::lock::open(&mut ws, Policy::Update(names))?;
    let ctx = ws.context();
    let refs: Vec<&Machine> = machines.iter().collect();
    crate::provider::local::lock_machines(&ctx, &refs).await?;
    if super::lock::save(&ctx)? == 0 {
        g.printer
            .info("Boxfile.lock already holds the newest versions the Boxfile allows");
    }
    Ok(())
}

/// Gets box `name` again from the source of its newest version; the same
/// image again adds no version.
async fn fetch_again(g: &Settings, store: &Store, name: &str) -> anyhow::Result<()> {
    let p = &g.printer;
    let Some(newest) = store.find(name).map_err(with_hint)? else {
        // Not in the store at all: its recipe (if any) gets it.
        store.ensure(name, p).await?;
        return Ok(());
    };
    let source = newest.source.clone();
    let recipe = match source.strip_prefix("recipe:") {
        Some(r) if std::path::Path::new(r).is_dir() => {
            Some(Recipe::from_dir(std::path::Path::new(r)).map_err(with_hint)?)
        }
        Some(r) => Recipe::embedded(r),
        None => None,
    };
    let image = if let Some(recipe) = recipe {
        let lock = store.lock_async(&recipe.name, p).await.map_err(with_hint)?;
        recipe.get(store, &lock, p).await?
    } else if source.contains("://") || std::path::Path::new(&source).is_file() {
        let options = AddOptions {
            name: Some(name.to_string()),
            ..AddOptions::default()
        };
        store
            .add(&source, &options, p)
            .await
            .with_context(|| format!("cannot get box `{name}` again from {source}"))?
    } else {
        p.info(&format!(
            "box `{name}` came from {source}, which is not there to fetch again; using the store's versions"
        ));
        return Ok(());
    };
    p.info(&format!("box `{name}`: newest version {}", image.version));
    Ok(())
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
    print_rows(
        g,
        ["NAME", "VERSION", "PROVIDER", "SIZE", "CLOUDSTACK TEMPLATE"],
        &rows,
    );
}

/// A table with aligned columns.
fn print_rows<const N: usize>(g: &Settings, header: [&str; N], rows: &[[String; N]]) {
    let header = header.map(String::from);
    let mut widths = [0usize; N];
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
